"""The collector's fast paths (commit 5decc10) against the standard-library code they replaced.

To save CPU on every run, the collector swapped re, datetime, socket and io for hand-written code: the
redaction rules as string operations, parse_time and iso_z without datetime, /proc/<pid>/stat read as bytes,
hostname/fqdn from _socket. Each must give exactly what the code it replaced gave. That code (as of b7a663f)
is kept here as the reference, and each property below compares the two on generated inputs: the same
result, or an exception of the same type where the reference raised.
"""

import _socket
import datetime
import math
import os
import re
import socket
import time
from collections import Counter, defaultdict

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collectors import _util, host, parse_time, processes, redact
from collectors.redact import redact_argv, redact_command

REDACTION = settings(max_examples=400, deadline=None)  # the whole file runs in a few seconds


def outcome(function, *args):
    """("ok", value) or ("raised", exception type): what a call gave, to compare two implementations."""
    try:
        return ("ok", function(*args))
    except Exception as exc:  # noqa: BLE001 - any exception is an outcome to compare
        return ("raised", type(exc))


# -- 1. redaction -----------------------------------------------------------------------------------------
# The regex-based module as it was at b7a663f (collectors/redact.py), the reference for the string version,
# with each rule added since written the regex way too (the programs' tables are the module's own).
_OLD_REDACTED = "<redacted>"
_OLD_MAX_COMMAND = 1024
# pwd, cookie and the whole names (a signed URL's signature): added later
_OLD_SECRET_NAME = re.compile(r"pass|token|secret|key|auth|credential|pwd|cookie|jwt|bearer"
                              r"|\A(?:sig|signature|x-amz-signature|x-goog-signature|pat)\Z"
                              r"|[_.-]pat\Z", re.IGNORECASE)  # pat: added later
_OLD_SHORT_SECRET_FLAGS = ("-p",)
_OLD_AUTH_SCHEMES = ("bearer", "basic", "token", "digest")
_OLD_USER_FLAGS = ("-u", "--user", "-U", "--proxy-user")  # added with the string version's user:password rule
_OLD_WHOLE_ASSIGNMENT = re.compile(r"(-{0,2}[A-Za-z_][\w.-]*)=(.*)", re.DOTALL)
_OLD_ASSIGNMENT_NAME = re.compile(r"([\w.-]+)\+?=")  # +=: added later
# a value that opens a quote and does not close it goes to the end of the word: added later; and a value in
# escaped quotes (\"abc\", and shlex.quote's '\''abc'\'' inside a quoted string), later still
_OLD_ASSIGNMENT_VALUE = re.compile(r"""(([\\'"]*['"])(?:.*?\2|.*)|[^\s&;,"']+)""", re.DOTALL)
# a user with no password, in an http(s) URL: added later (the scheme is checked in _old_hide_url)
_OLD_URL = re.compile(r"([A-Za-z][\w+.-]*://)(?:([^\s:/@?#]+)@|([^\s:/@]*):[^\s@/]*@)")
_OLD_SECRET_FLAG = re.compile(r"-{1,2}([A-Za-z_][\w.-]*)")
# a header written into an option or setting, or ending in an auth scheme (its case checked apart): added later
# \", and a JSON key ({"api_key": x), added later
_OLD_HEADER_WORD = re.compile(r"(?:-H)?(?:.*[=,{\[])?[\\'\"]*([A-Za-z_][\w-]*)[\\'\"]*:([^:]*)", re.DOTALL)
# added later: a key and its value in JSON or a Python dict written into an argument
_OLD_JSON_PAIR = re.compile(r"""(?<!\\)(\\*["'])([A-Za-z_][\w.-]*)\1(?::|\]=)("""
                            r""""(?:[^"\\]|\\.)*(?:"|\Z)|'(?:[^'\\]|\\.)*(?:'|\Z)|(\\+["'])(?:.*?\4|.*)|[^,}\]{\[]*)""",
                            re.DOTALL)
# added later: a call's quoted key right after its "(", and its value right after the ","
_OLD_CALL_PAIR = re.compile(r"""\((\\*["'])([A-Za-z_][\w.-]*)\1,("""
                            r""""(?:[^"\\]|\\.)*(?:"|\Z)|'(?:[^'\\]|\\.)*(?:'|\Z)|(\\+["'])(?:.*?\4|.*)|[^,)}\]{\[]*)""",
                            re.DOTALL)
# added later: a type annotating a name in Python code
_OLD_ANNOTATION = r"[A-Za-z_][\w.\[\],|]*"
_OLD_SPACES = re.compile(r"(\s+)")
# added with the string version's rules for passwords of named programs, and extended since: a program named
# right after a shell operator in its word, after a quote that opens it; after an = and an escaped quote, later
_OLD_PROGRAMS = set(redact.PASSWORD_FLAGS) | set(redact.PASSWORD_OPTIONS) | set(redact.USER_SEPARATORS) | set(
    redact.SECRET_ARGUMENTS)
_OLD_PROGRAM = re.compile(r"(?:.*[/;&|(`=])?[\\'\"]*(" + "|".join(map(re.escape, _OLD_PROGRAMS)) + r")[\\'\"]*",
                          re.DOTALL)


def _old_redact_argv(argv, limit=_OLD_MAX_COMMAND):
    return _old_cap(" ".join(_old_redact_words(list(argv))), limit)


def _old_redact_command(command, limit=_OLD_MAX_COMMAND, seps=":", users=_OLD_USER_FLAGS):
    parts = _OLD_SPACES.split(command)
    # added with plain secret arguments ending at a line break: the words that begin a line
    breaks = {i // 2 + 1 for i in range(1, len(parts), 2)
              if "\n" in parts[i] and not re.search(r"(?<!\\)(?:\\\\)*\\\Z", parts[i - 1])}  # not after \
    parts[0::2] = _old_redact_words(parts[0::2], seps, users, spans=True, breaks=breaks)
    return _old_cap("".join(parts), limit)


def _old_redact_words(words, seps=":", users=_OLD_USER_FLAGS, spans=False, breaks=()):
    out = []
    pending = user = header = rest = False
    flags, glued, users, triggers, letters = set(), set(), set(users), set(), set()
    # added with quoted values holding spaces: the quotes open before each word, ' and " counted apart; and
    # apart by the backslashes before them (added later: \" inside a quoted string, \\\" inside one in that)
    parity = defaultdict(int)
    span = ""
    heredoc = False
    depth = 0  # added later: the ( opened since a program's secret arguments began
    assigning = False  # added later: argv, after -e/--env/env/export: NAME=a b is an assignment
    held = opened = ""  # added later: the quote a pending flag's word opened, hiding its value up to the close
    keyed = colon = False  # added later: the previous word was a secret JSON key before a spaced colon; its colon
    paren = 0  # added later: the ( a hidden value of Python code left open, hiding the words until they close
    pquote = ""  # added later: the Python string those words left open, whose parentheses do not count
    for i, word in enumerate(words):
        was_keyed, keyed = keyed, False
        before = defaultdict(int, parity)
        for quote, n in _old_tokens(word).items():
            parity[quote] ^= n % 2
        heredoc = heredoc or (rest and word.startswith("<<"))  # added: the lines after it are the secret
        if rest and spans and i in breaks and not heredoc:
            rest = False  # added: a new line is another command
        elif rest and spans and word.startswith("-"):
            ended, depth = _old_command_end(word, depth)
            rest = not ended  # added: an option ending with a shell operator is another command
        if not word:
            out.append(word)
            continue
        if paren and i in breaks:
            pquote = ""  # added later: a line break ends a Python string left open
        if span or paren:
            out.append(_OLD_REDACTED)
            if span and not parity[span]:
                span = held = ""  # added later: a pending flag's quote is closed too
            if paren:  # added later
                paren, pquote = _old_parens(word, paren, pquote)
            continue
        bare = word  # added with quoted flags
        if m := re.fullmatch(r"[\\'\"]+(.*?)[\\'\"]*", word, re.DOTALL):
            bare = m.group(1) or word
        # added with the string version's rules for values written into -u and for named programs' flags
        if m := _OLD_PROGRAM.fullmatch(bare):
            program = m.group(1)
            flags |= set(redact.PASSWORD_FLAGS.get(program, ())) | set(redact.PASSWORD_OPTIONS.get(program, ()))
            glued |= set(redact.PASSWORD_FLAGS.get(program, ()))
            users |= set(redact.PROGRAM_USER_FLAGS.get(program, ()))
            triggers |= set(redact.SECRET_ARGUMENTS.get(program, ()))
            letters |= {t[1] for t in redact.SECRET_ARGUMENTS.get(program, ()) if re.fullmatch("-.", t)}
            if program in redact.USER_SEPARATORS and redact.USER_SEPARATORS[program] not in seps:
                seps += redact.USER_SEPARATORS[program]
        new, start = None, 0
        lead = re.match(r"[\\'\"]*", word).group() if bare is not word else ""
        valued, colon = colon, False  # added later: a key's value; an object or a list is looked into
        if valued and re.match(r"[\\'\"]*[{\[]", word):
            pending = False
        if pending and (valued or not word.startswith("-")):
            if word.lower() in _OLD_AUTH_SCHEMES:
                out.append(word)
                continue
            new = _OLD_REDACTED
            pending = user = header = False
            if held and not _old_tokens(word).get(held, 0) % 2:
                opened = held
            held = ""
            if valued and spans:  # added later: a call the value of Python code opens hides its arguments
                paren, pquote = _old_parens(word, 0, "")
            elif word.endswith("=") and words[i - 1].endswith(":") and _old_assigns_secret(words, i):
                pending, colon = True, True  # added later: token: str= "x"
        elif rest and not word.startswith("-"):  # added with secrets as plain arguments
            ended, depth = _old_command_end(word, depth) if spans else (None, 0)  # argv: no operators
            new = (_OLD_REDACTED if ended is None or ended.start() else "") + (word[ended.start():] if ended else "")
            rest = not ended
        elif user and not word.startswith("-") and (m := re.fullmatch(rf"([^{seps}]*[{seps}]).*", word, re.DOTALL)):
            new = m.group(1) + _OLD_REDACTED
            user = header = False
        # added later: argv, a header with spaces after -H or written into it, whole
        into = "" if header else next((f for f in ("-H", "--header=") if word.startswith(f)), None)
        h = into is not None and re.fullmatch(re.escape(into) + r"([A-Za-z_][\w-]*):(\s*)(.*)", word, re.DOTALL)
        if new is None and any(c.isspace() for c in word) and h and _OLD_SECRET_NAME.search(h.group(1)):
            new = into + h.group(1) + ":" + h.group(2)
            value = h.group(3)
            if (scheme := re.fullmatch(r"(\S+)(\s*)(.*)", value, re.DOTALL)) and scheme.group(
                    1).lower() in _OLD_AUTH_SCHEMES:
                new, value = new + scheme.group(1) + scheme.group(2), scheme.group(3)
            new = new + _OLD_REDACTED if value.strip() else word
            pending = user = header = False
        if new is None and not any(c.isspace() for c in word):
            shorts = "|".join(re.escape(u) for u in users if len(u) == 2)
            prefix = "" if header else "-H" if bare.startswith("-H") else "--header=" if bare.startswith(
                "--header=") else None
            h = prefix is not None and re.fullmatch(rf"({re.escape(prefix)}([A-Za-z_][\w-]*):)(.+)", bare, re.DOTALL)
            if m := re.fullmatch(rf"((?:{shorts})[^{seps}=]*[{seps}]).*", bare, re.DOTALL):
                new, start = lead + m.group(1) + _OLD_REDACTED, len(lead) + 2
                pending = user = header = False
            elif h and _OLD_SECRET_NAME.search(h.group(2)) and h.group(3).lower() not in _OLD_AUTH_SCHEMES:
                new, start = lead + h.group(1) + _OLD_REDACTED, len(lead + h.group(1))  # added with headers
                pending = user = header = False
            elif glued and (m := re.fullmatch("(" + "|".join(map(re.escape, glued)) + ").+", bare, re.DOTALL)):
                new, start = lead + m.group(1) + _OLD_REDACTED, len(lead + m.group(1))
                pending = user = header = False
        if new is None and was_keyed and word == ":":  # added later: {"token" : "x"}
            new, pending, colon = word, True, True
        elif new is None and was_keyed and re.match(r":(?![\\'\"]*[{\[])", word):
            new, start = ":" + _OLD_REDACTED, 1
        # added later: Python code assigning a secret with spaces around "=" (token = "x", token ="x"); and later
        # "+=", and "]=" closing brackets that hold spaces (d[ "token" ]= "x")
        if new is None and i and (op := re.match(r"(\]?)\+?=(?!=)", word)) and _old_python_target(
                words, i, op.group(1)):
            if word == op.group():
                new, pending, colon = word, True, True
            else:
                new, start = op.group() + _OLD_REDACTED, op.end()
                if spans:
                    paren, pquote = _old_parens(word[op.end():], 0, "")
        if new is None:
            user = bare in users
            header = bare in ("-H", "--header")
            pending = _old_is_secret_flag(bare) or bare in flags
            colon = pending and bool(re.search(r"[\"']:\Z", word))  # added later: {"auth": {"password": x}}
            key = re.search(r"""(?<!\\)(\\*["'])([A-Za-z_][\w.-]*)\1\Z""", word)
            keyed = not pending and bool(key) and bool(_OLD_SECRET_NAME.search(key.group(2)))
            held = _old_opened(word, before, parity, 0) if pending and spans else ""
            new, start = _old_redact_word(word, seps, users, whole=assigning), None
            if not pending and _old_assigns_secret(words, i):  # added later: token= "x", setdefault('KEY', x)
                if word.endswith("="):
                    new = _old_redact_word(word[:-1], seps, users, whole=assigning) + "="
                pending, colon = True, True
            elif not spans and word.startswith("--env=") and any(c.isspace() for c in word):  # added later
                new = "--env=" + _old_redact_word(word[6:], seps, users, whole=True)
            elif spans and new != word and new.endswith(_OLD_REDACTED) and "(" in word:  # added: token=f(a, b)
                names = [m for m in _OLD_ASSIGNMENT_NAME.finditer(word) if _OLD_SECRET_NAME.search(m.group(1))]
                if names:
                    paren, pquote = _old_parens(word[names[-1].end():], 0, "")
            if triggers and not rest:
                rest = bare in triggers or bool(re.match(r"-(?!-)", bare) and any(c in bare for c in letters))
                depth = 0
        if not spans:
            assigning = word in ("-e", "--env", "env", "export") or (assigning and "=" in word)
        out.append(new)
        if spans and new != word:  # a hidden value that opens a quote hides the words up to where it closes
            span = _old_opened(word, before, parity, start if start is not None else word.find("=") + 1)
        if opened:
            span, opened = opened, ""
    return out


def _old_secret_assignee(word):
    """Whether word ends in a name Python code assigns a secret to: an identifier (dotted or not) at its start
    (after a shell string's quotes, added later) or after ( , { [ ;, or a quoted key in brackets (added later)."""
    m = re.match(r"[\\'\"]*([A-Za-z_][\w.]*)\Z", word) or re.search(r"(?<=[(,{\[;])([A-Za-z_][\w.]*)\Z", word) or (
        "[" in word and re.search(r"""(?<!\\)(\\*["'])([A-Za-z_][\w.-]*)\1\]\Z""", word))
    return bool(m) and bool(_OLD_SECRET_NAME.search(m.groups()[-1]))


def _old_parens(text, depth, quote):
    """The ( left open after text and the Python string it leaves open: the text outside strings, by regex (a
    string opened by a plain quote escapes with a backslash; one opened by a backslashed quote ends at one)."""
    while text:
        if len(quote) == 2:
            close = text.find(quote)
            if close < 0:
                return depth, quote
            text, quote = text[close + 2:], ""
            continue
        if quote:
            m = re.match(rf"(?:[^\\{quote}]|\\.)*{quote}", text, re.DOTALL)
            if m is None:
                return depth, quote
            text, quote = text[m.end():], ""
            continue
        m = re.match(r"""(?:[^'"\\]|\\(?!['"])|\\\Z)*""", text)
        for paren in re.findall(r"[()]", m.group()):
            depth = depth + 1 if paren == "(" else max(0, depth - 1)
        text = text[m.end():]
        if text.startswith("\\"):
            quote, text = text[:2], text[2:]
        elif text:
            quote, text = text[0], text[1:]
    return depth, quote


def _old_assigns_secret(words, i):
    """A secret name then "=" (not ==, !=, <=, >=), or a call's quoted secret key then "," (added later); "+=", the
    words before (_old_python_target) and a "(" in the word before the key: added later still."""
    word = words[i]
    if (m := re.fullmatch(r"(.*?)\+?=", word, re.DOTALL)) and not re.search(r"[=!<>]=\Z", word):
        return _old_python_target(words, i, m.group(1))
    m = re.search(r"""(?<!\\)(\\*["'])([A-Za-z_][\w.-]*)\1,\Z""", word)
    return bool(m) and ("(" in word or i > 0 and words[i - 1].endswith("(")) and bool(
        _OLD_SECRET_NAME.search(m.group(2)))


def _old_python_target(words, i, head):
    """Whether what precedes an assignment's operator, head in words[i] (or the word before where head is ""),
    is a secret's name (added later): with the words of a key's brackets holding spaces joined, or before an
    annotation and its colon."""
    parts = words[:i] + [head] if head else words[:i]
    if not parts:
        return False
    if parts[-1] == "]" and len(parts) > 1:  # d[ "token" ]
        parts[-2:] = ["".join(parts[-2:])]
    if re.fullmatch(r"[^\[]*\]", parts[-1]) and len(parts) > 1:  # d[ "token"]
        parts[-2:] = ["".join(parts[-2:])]
    if _old_secret_assignee(parts[-1]):
        return True
    if len(parts) > 1 and parts[-2].endswith(":") and re.fullmatch(_OLD_ANNOTATION, parts[-1]):  # token: str
        parts[-2:] = ["".join(parts[-2:])]
    m = re.fullmatch(r"(.*):" + _OLD_ANNOTATION, parts[-1], re.DOTALL)
    return bool(m) and _old_secret_assignee(m.group(1))


def _old_tokens(word, start=0):
    """{quote with the backslashes before it: how many} of word's quotes at index start or later (added later)."""
    return Counter(m.group() for m in re.finditer(r"\\*['\"]", word) if m.end() > start)


def _old_opened(word, before, parity, start):
    """The quote a word opens in its part from start on: the most escaped first, ' before " (added later)."""
    for quote in sorted(_old_tokens(word), key=lambda q: (-len(q), q[-1] == '"')):
        if not before[quote] and parity[quote] and _old_tokens(word, start)[quote] % 2:
            return quote
    return ""


def _old_command_end(word, depth):
    """The shell operator that ends the command in word (None if none), and the ( left open: ones inside
    $(...) do not end it (added later)."""
    for m in re.finditer(r"[;&|)`(]", word):
        if m.group() == "(":
            depth += 1
        elif depth:
            depth -= m.group() == ")"
        else:
            return m, depth
    return None, depth


def _old_is_secret_flag(word):
    if word in _OLD_SHORT_SECRET_FLAGS:
        return True
    if m := _OLD_SECRET_FLAG.fullmatch(word):
        return bool(_OLD_SECRET_NAME.search(m.group(1)))
    m = _OLD_HEADER_WORD.fullmatch(word)
    return bool(m and m.group(2).lower() in ("",) + _OLD_AUTH_SCHEMES and _OLD_SECRET_NAME.search(m.group(1)))


def _old_redact_word(word, seps=":", users=_OLD_USER_FLAGS, whole=False):
    spaced = any(c.isspace() for c in word)
    m = _OLD_WHOLE_ASSIGNMENT.fullmatch(word)
    if m and _OLD_SECRET_NAME.search(m.group(1)) and (word.startswith("-") or not spaced or whole):
        return m.group(1) + "=" + _OLD_REDACTED
    n = re.fullmatch(r"([\\'\"]*([^=]*))=(.*)", word, re.DOTALL)  # \\ added later
    if n and n.group(2) in users and (u := re.fullmatch(rf"([^{seps}]*[{seps}]).*", n.group(3), re.DOTALL)):
        return n.group(1) + "=" + u.group(1) + _OLD_REDACTED
    if spaced:
        return _old_redact_command(word, None, seps, users)
    word = _OLD_URL.sub(_old_hide_url, word)
    word = _OLD_URL_PATH.sub(_old_hide_url_path, word)  # added later
    for pair in (_OLD_JSON_PAIR, _OLD_CALL_PAIR):  # the call's: added later
        word = pair.sub(lambda m: m.group()[:m.start(3) - m.start()] + _OLD_REDACTED
                        if m.group(3) and _OLD_SECRET_NAME.search(m.group(2)) else m.group(), word)
    return _old_hide_assignments(word)


def _old_hide_url(m):
    if m.group(2) is None:
        return m.group(1) + m.group(3) + ":" + _OLD_REDACTED + "@"
    http = m.group(1)[:-3].lower().endswith(("http", "https"))  # added later
    return m.group(1) + (_OLD_REDACTED if http else m.group(2)) + "@"


# a webhook's or a bot's secret in a URL's path: added later
_OLD_URL_PATH = re.compile(r"""(?<![\w+.-])([\w+.-]*[A-Za-z][\w+.-]*://)([^/?#,"'\\|;&<>()`]*)(/[^?#,"'\\|;&<>()`]*)?""")


def _old_hide_url_path(m):
    path = m.group(3)
    if not path:
        return m.group()
    if re.search(r"(?:\A|\.)(?:hooks?|webhook[^.]*)(?:\.|\Z)", m.group(2).rpartition("@")[2], re.IGNORECASE):
        path = re.sub(r"\A/.+", "/" + _OLD_REDACTED, path, flags=re.DOTALL)
    elif h := re.match(r"(/(?:[^/]*/)*?(?:hooks?|webhook[^/]*)/)(.+)", path, re.IGNORECASE | re.DOTALL):
        path = h.group(1) + _OLD_REDACTED
    else:
        path = re.sub(r"(?<=/bot)[0-9]+:[^/]*", _OLD_REDACTED, path)
    return m.group(1) + m.group(2) + path


def _old_hide_assignments(word):
    """Every name=value left to right, a value that looks like a secret hidden; a name that does not is
    passed, not its value (one may be inside: --env=HF_TOKEN=x; added later)."""
    out, copied, pos = [], 0, 0
    while m := _OLD_ASSIGNMENT_NAME.search(word, pos):
        v = _OLD_ASSIGNMENT_VALUE.match(word, m.end())
        if v and _OLD_SECRET_NAME.search(m.group(1)):
            out += [word[copied:m.end()], _OLD_REDACTED]
            copied = pos = v.end()
        else:
            pos = m.end()
    return "".join(out) + word[copied:]


def _old_cap(command, limit):
    if limit is not None and len(command) > limit:
        return command[: limit - 3] + "..."
    return command


# Pieces the rules react to, so that generated command lines match them often; joined with arbitrary text.
PIECES = [
    "--password=", "--password", "-password=", "--db-pass", "-p", "-p=", "--token", "--api-key=", "--auth",
    "-u", "--user", "--user=", "-U", "--proxy-user", "alice:pw",
    "mysql", "/usr/bin/mysqldump", "mariadb-dump", "sshpass", "x/sshpass", "mysql/x", "'mysql", "\"/bin/sshpass",
    "-phunter2", "-p:", "-ua:b", "-U:", "-u:x", "-pthread", "-url=h:1", "-u=:x", "ipmitool", "-P", "-Phunter2",
    "redis-cli", "-a", "-apw", "/usr/bin/zip", "7z", "mysql_dump.sql", "MYSQL_PWD=", "--pwd",
    "smbclient", "/usr/bin/lftp", "'net", "alice%pw", "a,b", "-Ua%b", "-ua,b", "--user=a%b", "%", "-U%",
]
PIECES += [
    "-x", "--", "-", "token:", "Token:", "Authorization:", "X-Auth-Token:", "Bearer", "basic", "DIGEST", "token",
    "user:pw@host", "scheme://u:p@h/x", "https://", "mongodb+srv://a:b:c@h", "://", ":", "/", "@", "?",
    "KEY=val", "API_KEY=", "aws_secret=", "credential=", "x=1", "=", '"', "'", '="a b"', "='x'", "&", ";", ",",
    ".", "_", "+", " ", "  ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x85", "\u3000", "\xa0", "\u2028",
    "ſ", "\u212a", "İ", "ı", "é", "ß", "\u0130", "paſs", "\u212aey", "PAſſ", "Ωkey", "0", "9", "²", "٣", "",
    "pass", "PASS", "secret", "key", "auth", "credential", "a", "Z",
]
PIECES += [  # added with the rules for wbinfo, shell operators, quotes, headers, URLs' users, programs' arguments
    "wbinfo", "-a", "-aa%b", "-K", "--pam-logon=", "&&", "|", "(", "$(", "`", ")", "cd /x&&mysql", "x;lftp",
    "'-p", '"-pa b"', "'--token'", "'-u", "'-Ua%b'", "TOKEN='a", "b'", "-H", "--header", "-HAuthorization:",
    "--header=", "X-Api-Key:", "Authorization:Bearer", "http.extraHeader=", "https://tok@h", "git+https://",
    "HTTP://", "--env=", "HF_TOKEN=", "sig", "Signature", "cookie", "openssl", "-k", "-K", "ldapsearch", "-w",
    "snmpwalk", "-c", "xfreerdp", "/p:", "ipmi-sensors", "wandb", "login", "htpasswd", "-nb", "-b", "aws", "set",
]
PIECES += ['{"', '":"', '":', "':'", "{'", '"}', ',"', '\\":\\"', '":{"', '":[', "pass", '"token"']  # JSON
PIECES += ["_pat", "-PAT", ".pat", "pat", "compat"]  # personal access tokens
PIECES += [" : ", " :", ' :"', "'token'", '\\"key\\"', '{"pwd"', ',"auth"', "x'", ' : "a b", ']  # spaced colons
PIECES += [" = ", " =", "= ", "=", "==", "['HF_TOKEN']", '["key"]', "(token", ".api_key", "('pwd',", "setdefault(",
           "x=", "!="]  # Python assignments, added later
PIECES += ["hooks.x.com/", "/webhooks/", "/hook", "HOOK", "hoo", "k/", "/bot12:", "bot1:a", "/bot", "1:", "#"]  # paths
PIECES += [  # added with annotated and augmented assignments, spaced brackets, calls' keys and their parentheses
    "token:", "token: ", "self.key: ", "str", " str", "Optional[str]", "dict[str, str]", ":str", "+=", " += ", "+",
    "[ ", " ]", " ] = ", "]=", "]+=", "d[", "d[ 'token' ]", "(", "( ", " )", "('HF_TOKEN','", '("key",', "',",
    "('pass',", "os.getenv(", " = os.getenv('X', ", "x)", "'a b')", "default=", "TOKEN+=", "a+=", "+==",
]
PIECES += [  # added with escaped quotes, programs after =, $(...) in secret arguments, assignments with spaces
    '\\"', "\\'", "'\\''", '\\"-p', "\\'TOKEN=", "=\\\"", "--wrap=", "--wrap=mysql", "$(cat", "h)", "$(", "-e",
    "env", "export", "--env", "Cookie: a=1; b=2", "Authorization: Bearer x", "Authorization:Basic  y", " x)",
    "--env=TOKEN=a b", "-HCookie: a b", "--header=Cookie: a", "Authorization: Bearer", '""', '\\\\"',
]
# The secret words with one letter in another case, or swapped for a character that re's IGNORECASE takes for
# it but str.lower() does not (ſ for s, ı and İ for i, the Kelvin sign for k): looks_secret must agree with re.
_LOOKALIKES = {"s": "Sſ", "k": "K\u212a", "i": "Iıİ"}
SECRET_VARIANTS = sorted({
    word[:i] + c + word[i + 1:]
    for word in ("pass", "token", "secret", "key", "auth", "credential", "pwd", "jwt", "bearer")
    for i in range(len(word))
    for c in _LOOKALIKES.get(word[i], word[i].upper())
})
NAMES = st.sampled_from(SECRET_VARIANTS + ["port", "user", "x", "passwd", "apiKey", "a.b", "é", "_"])
NAME = st.builds(  # an option, header or assignment word
    lambda before, name, after, then: before + name + after + then,
    st.sampled_from(["", "-", "--", "---", "X-", "db_", "a.", "?", "&", "1", "é"]),
    NAMES,
    st.sampled_from(["", "=", ":", "=v", "_x=", ".d=", "-x:", ".x:", '="a b"', "='x'", "=a;b", "::"]),
    st.sampled_from(["", " v", ": v", "\tv", " -v", " Bearer x", "\xa0v", "= v", " "]),
)
VALUE = st.sampled_from(["", "v", "a b", "'x'", '"y"', "'", '"', "'a,b'", "a;b", "a&b", "a,b", "=", "u:p@h", "é"])
ASSIGNMENTS = st.lists(  # query strings and option lists: name=value joined by & , ; ? and others
    st.builds(lambda sep, name, value: sep + name + "=" + value,
              st.sampled_from(["", "&", ",", ";", "?", "/", ":", '"', "'", "x"]), NAMES, VALUE),
    min_size=1, max_size=4,
).map("".join)
URLS = st.lists(  # scheme://user:password@host, several in a word, some not quite a URL
    st.builds(lambda scheme, user, password, rest: scheme + "://" + user + password + rest,
              st.sampled_from(["http", "mongodb+srv", "a.b-c", "1a", "_x", "", "+", "é", "x/y", "s:"]),
              st.sampled_from(["", "u", "u@", "a/b", "é", "u:"]),
              st.sampled_from([":p@", ":@", ":p:q@", ":p/q@", ":p", "@", ":pé@", ":"]),
              st.sampled_from(["", "h", "h/x", "h:5432/db?token=x", "@h", "/"])),
    min_size=1, max_size=3,
).map("".join)
CHARS = "".join(sorted(set("".join(PIECES + SECRET_VARIANTS)))) + "abcxyzXYZ019"
SNIPPET = st.one_of(
    st.sampled_from(PIECES), NAME, ASSIGNMENTS, URLS,
    st.text(alphabet=st.sampled_from(CHARS) | st.characters(), max_size=4),
)
COMMAND = st.lists(SNIPPET, max_size=25).map("".join)
ARGV = st.lists(st.lists(SNIPPET, max_size=5).map("".join), max_size=8)
LIMIT = st.none() | st.integers(min_value=0, max_value=60)

REDACTION_EXAMPLES = [
    "",
    " ",
    "\t\n",
    " mysql --password=x db ",
    "psql -p s3cret -h db1",
    "curl -H Authorization: Bearer xyz https://h/api?token=abc&page=2",
    "app --token -x secret",
    "env API_KEY=abc AWS_SECRET_ACCESS_KEY=def python x.py",
    "mongo mongodb+srv://admin:pa:ss@cluster0/x",
    "a://b://c:d@e x://a:b/c@d 1a://u:p@h",
    "a==b x=\"y=z token=\"q\" 'k'=1 key='a&b'&key=\"c,d\",key=e;f",
    "--paſs=x --\u212aey x -İ=x İauth=x",
    "PAſS:\u3000v X-\u212aey: val\xa0tail",
    "--pass\u2028x\x1cy\x85--token\x0bz",
    "---token=x --=x -_=x _: :x x::",
    "²key=1 key²=1 ٣token=x",
    "a.token: v x-token.x: v -a.token v",
    "sh -c 'mysql -phunter2' && \"/bin/sshpass -px ssh -p22 h\" -ualice:pw -U: -u",
    "make -C mysql/src -pj gcc -pthread mkdir -p /var/lib/mysql -pv mariadb-dump -p -p=x",
    "ipmitool -I lanplus -H bmc -U admin -P hunter2 && redis-cli -a pw -apw zip -P z f 7z -px a -url=h:80 -u=a:b",
    "python train.py --data /data/mysql_export.parquet -pretrained env MYSQL_PWD=x DB_PWD=y --pwd z",
    "smbclient //s/x -U alice%pw -Ubob%pw --user=c%d && lftp -u alice,pw sftp://h -ua,b:c -U x:y%z",
    "python -u a%b,c ls -u a,b curl -u a%b:c net ads join -U DOM\\admin%pw",
    "lftp -e 'open -u alice,pw h' lftp -c \"open -u a,b h; ls\" samba-tool domain join -U Administrator%pw",
    "wbinfo -a alice%pw -Kb%c --pam-logon=d%e --pam-logon f%g -u a:b wbinfo -U 1000",
    "cd /x&&mysql -phunter2; true;sshpass -pw (redis-cli -a pw) $(ldapsearch -wpw) `7z x -pz` |zip -P q",
    "mysql \"-phunter2\" '--token' x '-ualice:pw' \"--password=a b\" export TOKEN='abc def' -p\" x it's",
    "sh -c \"export TOKEN='a b' && run\" x 'TOKEN=x cmd arg' app --token 'never closed",
    "curl -H X-Api-Key:abc -HAuthorization: Bearer x --header=Private-Token:y -H Authorization:Bearer z -H a:b",
    "git -c http.extraHeader=Authorization: Basic x clone https://tok@github.com/o/r git+HTTPS://t@h ftp://u@h",
    "docker run --env=HF_TOKEN=abc --export=A=1,TOKEN=x,B x=\"token=y\" k='unclosed",
    "azcopy https://a/c?sv=1&sig=abc&Signature=x&X-Amz-Signature=y --sigma=1 Cookie: s=1",
    "openssl enc -k pw -K hex -keyout f ipmitool -k kg -y hex snmpwalk -c public -Cc xfreerdp /p:pw /gp:x",
    "wandb login KEY && python x htpasswd -nbB a b;ls aws configure set aws_secret_access_key X rclone config",
    "ssh h 'curl -H \\\"Authorization: Bearer x\\\" https://h' \\\"-pS\\\" mysql \\\"-pS\\\" -H '\\''X-Key: k'\\''",
    "bash -c 'HF_TOKEN='\\''a b'\\'' python t.py' x \\\"export TOKEN=\\\"a b\\\" && run\\\" api_key=\\\"k\\\" m=1",
    "sbatch --wrap=mysql -pS --wrap='sshpass -pS' wandb login --host=$(cat h) KEY && run; wandb login $(a; b) K;x",
    "curl -H 'Cookie: a=1; sid=S' h --header=\"X-Token: a b\" c docker run -e TOKEN=a -e 'TOKEN=a b' env 'A=1 2'",
    "Auth='Cookie: a=1; b=2Auth='Auth=a bAuth Bearer x",
    'x {"user":"","password":"S2"} {\'a\':\'\',\'token\':\'S\'} {"password":"p\\"S2"} {"a":{"token":"S"},"b":1}',
    r"""k=''a token='\''\'\'''\''S'\''\'\'''\'' x token=\\\"S\\\" y token="\a" --wrap="rclone" create S""",
    "curl https://hooks.slack.com/services/T/B/S https://discord.com/api/webhooks/1/S?wait=1 https://h/hooks/",
    'x https://api.telegram.org/bot1:S/send,1a://h/HOOK/S 1://a.b://hooks.c/S {"u":"https://u:p@hooks.c/S"}',
    "https://h/bot1:S/hooks/ https://h/a/hooks//bot2:S/x https://h/robot1:x/bot:y/bot1x:z https://h",
    "sh -c curl https://hooks.x.com/S|tee b;x https://h/hooks/S&&y https://h/pre-commit-hooks/a Webhook.h/s --pat S",
    """x '{"token" : "S", "a" : 1, "password" :"S"}' {\\"key\\" : \\"S\\"} \\\\"key" : S 'pwd' : "a b" c""",
    """python3 -c import os\nos.environ["HF_TOKEN"] = "S" os.environ['T_KEY'] ='S' x['pwd']= 'a b' c""",
    "login(token = S)",
    'python3 -c password="hunter2";token= "x" login(password="h2",token= "x") https://a:h3@h/x;token= y',
    """os.environ["PASSWORD"]="h4";os.environ.setdefault("HF_TOKEN", "x") -e PASSWORD=h5;token= x""",
    "x openai.api_key = S token= 'S' setdefault('HF_TOKEN', S) putenv(\"PASS\", S) a == b k != 1 x = 5 (auth =S)",
    "token: str = S self.api_key: Optional[str] ='S' pwd:str = S key: dict[str, str]= {'a': 1} x: int = 5 k: s= S",
    "TOKEN += S TOKEN +='S' TOKEN+= S TOKEN+=S a+=1 key +== S ++= S os.environ['KEY'] += S HF_TOKEN+=S;x",
    'd[ "token" ] = S d["key" ] =S d[ \'pwd\']= S d[ "token" ]="S" d[ "a" ] = 1 d[ "auth" ] == S x ] = S',
    "setdefault('HF_TOKEN','S') getenv(\"KEY\",S) f(a,'token','S') ['token','S'] putenv( 'PASS', S ) get('k',S)",
    "token = os.getenv('X', 'S') x; api_key= f(a, (b), 'S') y key =g('(', S) z token = h(S) w",
    "token = f('a S', b) c pwd = {'k': f(S, T)} d {\"token\": os.getenv(\"X\", \"S\")} e token = os.getenv('X',",
    "Auth='Auth v'Auth=(token : \"a b\", x token = f(x, 'a b') y token = f('a (b', c) d) e",  # a quote's span, ( in it
    # added with the parentheses counted outside strings, and a value with no spaces that opens a call
    "token = f('(', 'it\\'s', ')', 'S') x token=os.getenv('X', 'S') y x=f(a, b) z HF_TOKEN=$(cat f) w \\\"S\\\")",
]


@REDACTION
@given(command=COMMAND, limit=LIMIT)
@example(command="sh -c 'mysql --password hunter2 -u root'", limit=None)
@example(command="x" * 10, limit=5)
@example(command="abc", limit=0)
def test_redact_command_matches_the_regex_version(command, limit):
    """redact_command (string operations) must match the regex code it replaced, kept here as the reference:
    same output for any command line, with the limit or without."""
    assert redact_command(command, limit) == _old_redact_command(command, limit)
    assert redact_command(command) == _old_redact_command(command)


@settings(REDACTION, max_examples=300)
@given(argv=ARGV, limit=LIMIT)
@example(argv=["sh", "-c", "mysql --password hunter2 -u root"], limit=None)
@example(argv=["sh", "-c", "TOKEN=abc ./run.sh", "--token", " x"], limit=None)
@example(argv=["tool", "--db-password=a,b;c d", "-p", "", "x"], limit=8)
@example(argv=["curl", "-H", "Authorization: Bearer xyz"], limit=None)
def test_redact_argv_matches_the_regex_version(argv, limit):
    """redact_argv must match the regex code it replaced, kept here as the reference, for argv lists whose
    elements hold spaces (sh -c "..."), are empty, or are secret flags and their values."""
    assert redact_argv(argv, limit) == _old_redact_argv(argv, limit)
    assert redact_argv(argv) == _old_redact_argv(argv)


@pytest.mark.parametrize("command", REDACTION_EXAMPLES)
def test_redaction_edge_cases_match_the_regex_version(command):
    """Hand-picked edge cases of each rule (non-ASCII case folding, Unicode spaces, \\w beyond ASCII, nested
    schemes, quoted values), as a command line, as argv words and as one sh -c argument."""
    assert redact_command(command) == _old_redact_command(command)
    assert redact_argv(command.split(" ")) == _old_redact_argv(command.split(" "))
    assert redact_argv(["sh", "-c", command]) == _old_redact_argv(["sh", "-c", command])


# -- 2. parse_time ----------------------------------------------------------------------------------------
def _old_parse_time(value):
    """collectors.parse_time as of b7a663f."""
    t = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def _z(year, month, day, hour, minute, second):
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


DATETIMES = st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59, 59))
Z_VALID = DATETIMES.map(lambda d: _z(d.year, d.month, d.day, d.hour, d.minute, d.second))
# every field a little out of its range too: year 0, month 13, day 32, 24:00, second 60, Feb 29 of any year
Z_FIELDS = st.builds(
    _z, st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
    st.integers(0, 61),
)
Z_EDGES = st.builds(
    lambda year, tail: f"{year:04d}-{tail}",
    st.integers(0, 9999) | st.integers(0, 99).map(lambda k: 100 * k) | st.integers(0, 24).map(lambda k: 400 * k),
    st.sampled_from(["02-29T00:00:00Z", "02-28T23:59:59Z", "03-01T00:00:00Z", "12-31T23:59:59Z", "01-01T00:00:00Z",
                     "02-29T24:00:00Z", "12-31T23:59:60Z", "06-30T23:59:60Z", "04-31T12:00:00Z"]),
)
OFFSETS = ["", "Z", "+00:00", "-00:00", "+05:30", "-12:00", "+14:00", "+0100", "+01", "+23:59:59", "z", "UTC"]
OTHER_ISO = st.builds(
    lambda d, spec, sep, offset: d.isoformat(sep=sep, timespec=spec) + offset,
    DATETIMES, st.sampled_from(["auto", "hours", "minutes", "seconds", "milliseconds", "microseconds"]),
    st.sampled_from(["T", " "]), st.sampled_from(OFFSETS),
)
# one character of a valid Z time replaced: near misses of the fast path's checks
NEAR_MISS = st.builds(
    lambda value, i, c: value[:i] + c + value[i + 1:], Z_VALID, st.integers(0, 19),
    st.sampled_from(list("0123456789-T:Z+ .tz") + ["٣", "１", "²", "", "00"]),
)
SPACE = st.sampled_from(["", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\u3000", "\xa0", "\x1c"])
TIMES = st.builds(lambda a, v, b: a + v + b, SPACE, Z_VALID | Z_FIELDS | Z_EDGES | OTHER_ISO | NEAR_MISS, SPACE)


@settings(max_examples=600, deadline=None)
@given(value=TIMES)
@example(value="0001-01-01T00:00:00Z")
@example(value="9999-12-31T23:59:59Z")
@example(value="1970-01-01T00:00:00Z")
@example(value="2000-02-29T12:00:00Z")
@example(value="2000-03-01T00:00:00Z")
@example(value="1900-02-29T12:00:00Z")
@example(value="2023-02-29T00:00:00Z")
@example(value="2024-01-01T24:00:00Z")
@example(value="2016-12-31T23:59:60Z")
@example(value="0000-01-01T00:00:00Z")
@example(value=" \t2024-05-06T07:08:09Z\n")
@example(value="2024-05-06T07:08:09.5Z")
@example(value="2024-05-06T07:08:09+02:00")
@example(value="2024-05-06T07:08:09")
@example(value="2024-05-06")
@example(value="")
@example(value="+024-01-01T00:00:00Z")
@example(value="２０２４-01-01T00:00:00Z")
def test_parse_time_matches_the_datetime_version(value):
    """parse_time's datetime-free path for "YYYY-MM-DDTHH:MM:SSZ" must give the number datetime gave, over the
    whole datetime range (leap years, year 1 and 9999), hand invalid dates (Feb 29 of a common year, 24:00,
    second 60) to datetime to raise the same error, and leave every other ISO form to datetime. The old
    datetime code is kept here as the reference."""
    assert outcome(parse_time, value) == outcome(_old_parse_time, value)


# -- 3. iso_z ---------------------------------------------------------------------------------------------
def _old_iso_z(epoch, micro=False):
    """collectors._util.iso_z as of b7a663f."""
    if epoch is None:
        return None
    dt = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    if micro:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _near_half_micro(second, micro, steps):
    """A float within a few ulps of second + (micro + 0.5) us, where rounding to microseconds turns."""
    value = second + (micro + 0.5) / 1e6
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    return value


LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z
EPOCHS = st.one_of(
    st.floats(min_value=0, max_value=LAST_SECOND + 0.999999),
    st.integers(min_value=0, max_value=LAST_SECOND),
    st.floats(min_value=-62135596800.0, max_value=0),  # before 1970: datetime's path in both
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(_near_half_micro, st.integers(0, 2**33), st.integers(0, 999999), st.integers(-3, 3)),
    st.builds(lambda s, d: s + d, st.integers(0, 2**31), st.sampled_from([0.9999995, 0.9999994, 0.9999996, 5e-7])),
    st.sampled_from([None, 0, 0.0, -0.0, -1e-7, -5e-7, 1e-7, 0.5, LAST_SECOND, LAST_SECOND + 0.5, LAST_SECOND + 1,
                     LAST_SECOND + 0.9999995, 253402300800.0, -62135596800, -62135596801, math.nan, math.inf,
                     -math.inf, 2**31 - 1 + 0.9999995, 1e300]),
)


@settings(max_examples=600, deadline=None)
@given(epoch=EPOCHS, micro=st.booleans())
@example(epoch=0.9999995, micro=False)
@example(epoch=0.9999995, micro=True)
@example(epoch=1.0000005, micro=True)
@example(epoch=1.0000015, micro=True)
@example(epoch=None, micro=True)
@example(epoch=math.nan, micro=False)
@example(epoch=math.inf, micro=True)
@example(epoch=-1, micro=True)
def test_iso_z_matches_the_datetime_version(epoch, micro):
    """iso_z's time.gmtime path (0 <= epoch < year 10000) must round microseconds half to even and carry into
    the seconds exactly as datetime.fromtimestamp did, and everything else (before 1970, year 10000 on, nan,
    inf) must give datetime's answer or raise its exception type. The old code is kept here as the reference."""
    assert outcome(_util.iso_z, epoch, micro) == outcome(_old_iso_z, epoch, micro)


# -- 4. /proc/<pid>/stat ----------------------------------------------------------------------------------
USED = (0, 11, 12, 19, 21)  # state, utime, stime, starttime, rss: what processes.py reads


def _old_stat_fields(path):
    """processes.read_stat plus the split _stats_proc and _details_proc did, as of b7a663f."""
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace")
    return raw[raw.rindex(")") + 2:].split()


def _compare_stat(proc_dir, pid):
    """The used fields of <proc_dir>/<pid>/stat by stat_fields (PROC pointed at proc_dir) and by the old parse."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(processes, "PROC", str(proc_dir))  # stat_fields builds f"{PROC}/{pid}/stat" from its own PROC
        new = processes.stat_fields(pid)
    old = _old_stat_fields(os.path.join(str(proc_dir), str(pid), "stat"))
    assert [new[i].decode("utf-8", "replace") for i in USED] == [old[i] for i in USED]
    assert [int(new[i]) for i in USED[1:]] == [int(old[i]) for i in USED[1:]]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc here")
def test_stat_fields_match_the_old_parse_on_this_machine(tmp_path):
    """stat_fields (bytes, split up to rss) must give the fields the old str parse gave, on every process of
    this machine. Each stat file is copied first, so that both parse the very same bytes."""
    copied = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:  # exited meanwhile
            continue
        (tmp_path / name).mkdir()
        (tmp_path / name / "stat").write_bytes(raw)
        copied.append(name)
    assert str(os.getpid()) in copied
    for name in copied:
        _compare_stat(tmp_path, name)
    # and read in place: the start time of this process does not change between the two reads
    me = os.getpid()
    assert processes.stat_fields(me)[19].decode() == _old_stat_fields(f"/proc/{me}/stat")[19]


COMM_PIECES = st.sampled_from([b")", b"(", b" ", b") ", b") R 1 ", b"))", b"\xff", b"\xe2)", b"\xc3", b"\xc3\xa9",
                               b"\n", b"\t", b"\x85", b"\xa0", b"\x00", b"x", b"kworker/0:1", "é ſ".encode()])
COMM = st.lists(COMM_PIECES | st.binary(max_size=4), max_size=8).map(b"".join)
STATE = st.sampled_from([b"R", b"S", b"D", b"Z", b"T", b"t", b"X", b"I", b"K", b"W", b"P"])
NUMBERS = st.lists(st.integers(min_value=-(2**63), max_value=2**64 - 1), min_size=22, max_size=50)


@pytest.fixture(scope="module")
def proc_dir(tmp_path_factory):
    """A directory standing for /proc, shared by the examples of a property (each writes its own stat file)."""
    return tmp_path_factory.mktemp("proc")


@settings(max_examples=200, deadline=None)
@given(pid=st.integers(1, 2**22), comm=COMM, state=STATE, numbers=NUMBERS, newline=st.booleans())
@example(pid=1, comm=b"a) b (c", state=b"S", numbers=list(range(49)), newline=True)
@example(pid=7, comm=b"\xff\xfe)", state=b"R", numbers=list(range(22)), newline=False)
def test_stat_fields_match_the_old_parse_on_synthetic_lines(proc_dir, pid, comm, state, numbers, newline):
    """stat_fields must give the old parse's fields for command names holding ")", "(", spaces, newlines and
    bytes that are not UTF-8 (the old code decoded with "replace" before looking for the last ")")."""
    (proc_dir / str(pid)).mkdir(exist_ok=True)
    line = b"%d (%s) %s %s" % (pid, comm, state, b" ".join(b"%d" % n for n in numbers))
    (proc_dir / str(pid) / "stat").write_bytes(line + (b"\n" if newline else b""))
    _compare_stat(proc_dir, pid)


# -- 5. hostname and fqdn ---------------------------------------------------------------------------------
def _resolver_usable():
    """None, or why this machine's resolver cannot be used for a quick comparison."""
    started = time.monotonic()
    try:
        socket.getfqdn()
    except Exception as exc:  # noqa: BLE001
        return f"socket.getfqdn() fails here: {exc!r}"
    if time.monotonic() - started > 2:
        return "the resolver takes over 2 s to answer socket.getfqdn() here"
    return None


@pytest.fixture
def resolver():
    """Skip where this machine's resolver fails or is slow: these tests compare answers, not resolvers."""
    reason = _resolver_usable()
    if reason:
        pytest.skip(reason)


def test_hostname_and_fqdn_match_socket_on_this_machine(resolver):
    """hostname() and fqdn() (from _socket, no idna codec for an ASCII name) must give what socket did."""
    assert host.hostname() == socket.gethostname()
    assert host.fqdn() == socket.getfqdn()


# Names chosen to need no DNS query (the test stays fast and off the network): answered from /etc/hosts, numeric,
# or refused by the idna codec before any lookup.
FQDN_NAMES = [
    "localhost",
    "LocalHost",
    "127.0.0.1",  # ASCII with dots
    "a..b",  # an empty label: the idna codec raises UnicodeError, and socket.getfqdn() with it
    "x" * 64,  # a label of 64 characters: the same
    "x" * 64 + ".example",
    "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",  # fullwidth "localhost": non-ASCII, idna maps it
    "localhoſt",  # non-ASCII: ſ is s after nameprep
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # fullwidth 127.0.0.1
]


@pytest.mark.parametrize("name", FQDN_NAMES)
def test_fqdn_matches_socket_for_other_host_names(resolver, monkeypatch, name):
    """fqdn() for a host named `name` must give what socket.getfqdn() gives, or raise its exception type.

    fqdn() reads the name from _socket.gethostname, and for a name the idna codec would change or refuse it
    calls socket.getfqdn(), which reads socket.gethostname (the same function, bound when socket was imported):
    both are patched, so that the reference and both paths of fqdn() see the same host name."""
    monkeypatch.setattr(_socket, "gethostname", lambda: name)
    monkeypatch.setattr(socket, "gethostname", lambda: name)
    assert outcome(host.fqdn) == outcome(socket.getfqdn, name)
    assert host.hostname() == name
