"""Redact obvious secrets from command lines before they leave the host (docs/document.md).

Rules, applied per argument (and per word inside an argument holding spaces, as in ``sh -c "..."``):

- ``--name=value``, ``-name=value`` and environment-style ``NAME=value`` (also inside a URL query,
  ``?token=abc``) whose name looks like a secret: the value becomes ``<redacted>``;
- ``--name value`` pairs, the short ``-p value`` and ``Name: value`` header words (``Authorization:
  Bearer x``): the next word becomes ``<redacted>``, unless it starts with ``-`` (then it is an option);
- ``scheme://user:password@host``: the password becomes ``<redacted>``;
- ``-u user:password`` and ``--user user:password`` (``--user=...``; curl, and ``-U``/``--proxy-user``):
  what follows the first ``:`` becomes ``<redacted>`` (``python -u train.py`` holds no ``:``), also where it
  is written into the flag (``-ualice:password``, not ``-url=http://h:80``);
- after a word naming a program of PASSWORD_FLAGS, its password flag's value: written into it (``mysql
  -phunter2``: the rest of the word) or the next word (``ipmitool -P hunter2``);
- after a word naming a program of USER_SEPARATORS, the user flags' rule above splits at that program's
  character too, whichever comes first (``smbclient -U alice%pw``, ``lftp -u alice,pw``), also inside a
  later argument holding spaces (``lftp -e "open -u alice,pw h"``).

A name looks like a secret when it contains pass, token, secret, key, auth, credential or pwd (any case).
Redacting too much is the safe error. The result is capped at MAX_COMMAND characters.

Speed: the rules are written as string operations, not regular expressions, because compiling the
patterns cost a few ms of CPU on every run. Each helper gives the pattern it stands for; character classes
follow re's rules for str: ``\\w`` is ``str.isalnum()`` or ``_``, ``\\s`` is ``str.isspace()``.
"""

REDACTED = "<redacted>"
MAX_COMMAND = 1024
#: The most of a command line that is read and redacted: redaction shortens secrets, so more than
#: MAX_COMMAND, but bounded: megabytes of arguments cost seconds and outlasted the host timeout.
MAX_INPUT = 8 * MAX_COMMAND

SECRET_WORDS = ("pass", "token", "secret", "key", "auth", "credential", "pwd")
SHORT_SECRET_FLAGS = ("-p",)  # mysql/sshpass style; a redacted port number is harmless
AUTH_SCHEMES = ("bearer", "basic", "token", "digest")
USER_FLAGS = ("-u", "--user", "-U", "--proxy-user")  # curl's user:password
#: Programs with a short flag that takes a password, written into it (mysql -phunter2) or as the next word
#: (ipmitool -P hunter2), and that flag. It counts only after a word naming one (its file name, exactly), since
#: elsewhere these flags are mostly something else (gcc -pthread, mkdir -pv, scp -P 2222, rsync -P).
PASSWORD_FLAGS = dict.fromkeys((
    "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck", "mysqlshow", "mysqlslap", "mysqlbinlog",
    "mysqlpump", "mysqlsh", "mariadb", "mariadb-dump", "mariadb-admin", "mariadb-import", "mariadb-check",
    "mariadb-show", "mariadb-slap", "mariadb-binlog", "sshpass", "7z", "7za", "7zz", "rar", "unrar",
), "-p")
PASSWORD_FLAGS.update({"ipmitool": "-P", "zip": "-P", "unzip": "-P", "redis-cli": "-a"})
#: Programs whose user flag's value joins the password with another character than curl's ":" (Samba's
#: ``-U alice%pw``, lftp's ``-u alice,pw``), and that character. Like PASSWORD_FLAGS, only after a word
#: naming one.
USER_SEPARATORS = dict.fromkeys(("smbclient", "rpcclient", "smbcacls", "smbcquotas", "smbget", "smbtree", "net",
                                 "samba-tool"), "%")
USER_SEPARATORS["lftp"] = ","

_secret_pattern = []  # re.compile("pass|token|...", re.IGNORECASE), compiled for the first non-ASCII name


def redact_argv(argv, limit=MAX_COMMAND):
    """One redacted command line (str) from an argv list of str; of a long one, its first MAX_INPUT
    characters only (then "...")."""
    words, room = [], MAX_INPUT
    for word in argv:
        if room <= 0:
            return _cap(" ".join(_redact_words(words)), limit, cut=True)
        words.append(word[:room])
        room -= len(word) + 1
    return _cap(" ".join(_redact_words(words)), limit, cut=room < 0)


def redact_command(command, limit=MAX_COMMAND, seps=":"):
    """A redacted copy of a command line given as one string (split on whitespace, spacing kept); of a long
    one, its first MAX_INPUT characters only. ``seps``: what joins a user flag's user and password, as the
    words around it say (``lftp -e "open -u alice,pw h"``: the program is named outside the string)."""
    parts = _split_spaces(command[:MAX_INPUT])
    parts[0::2] = _redact_words(parts[0::2], seps)
    return _cap("".join(parts), limit, cut=len(command) > MAX_INPUT)


def looks_secret(name):
    """Whether name contains a secret word in any case: re.search("pass|token|...", name, re.IGNORECASE)."""
    if name.isascii():
        name = name.lower()
        return any(word in name for word in SECRET_WORDS)
    # beyond ASCII, re's case-insensitive match differs from str.lower() (it takes "ſ" for "s", "K" for "k")
    if not _secret_pattern:
        import re

        _secret_pattern.append(re.compile("|".join(SECRET_WORDS), re.IGNORECASE))
    return _secret_pattern[0].search(name) is not None


def _redact_words(words, seps=":"):
    out = []
    pending = False  # the previous word asked for its value to be hidden
    user = False  # the previous word was -u/--user: a user:password may follow
    flags = set()  # the password flags of the programs named so far (PASSWORD_FLAGS)
    # seps: what joins a user flag's user and password: curl's ":", and those of the programs named so far
    for word in words:
        if not word:
            out.append(word)
            continue
        program = word.rpartition("/")[2].lstrip("'\"")  # sh -c 'mysql ...' split: 'mysql
        flag = PASSWORD_FLAGS.get(program)
        if flag is not None:
            flags.add(flag)
        sep = USER_SEPARATORS.get(program)
        if sep is not None and sep not in seps:
            seps += sep
        if pending and not word.startswith("-"):
            if word.lower() in AUTH_SCHEMES:  # "Authorization: Bearer <token>": hide the token
                out.append(word)
                continue
            out.append(REDACTED)
            pending = user = False
            continue
        if user and not word.startswith("-"):
            at = _find_first(word, 0, seps)
            if at < len(word):
                out.append(word[:at + 1] + REDACTED)
                user = False
                continue
        if len(word) > 2 and word.split() == [word]:  # a value written into a short flag (no whitespace)
            at = _find_first(word, 2, seps)
            # curl -ualice:password, smbclient -Ualice%pw; not -url=h:80
            if word[:2] in ("-u", "-U") and at < len(word) and "=" not in word[:at]:
                out.append(word[:at + 1] + REDACTED)
                pending = user = False
                continue
            if word[:2] in flags:  # mysql -phunter2
                out.append(word[:2] + REDACTED)
                pending = user = False
                continue
        user = word in USER_FLAGS
        pending = _is_secret_flag(word) or word in flags
        out.append(word if pending else _redact_word(word, seps))
    return out


def _is_secret_flag(word):
    if word in SHORT_SECRET_FLAGS:
        return True
    name = _flag_name(word)
    return name is not None and looks_secret(name)


def _flag_name(word):
    r"""The name of an option ("--name", "-name") or header ("Name:") word, else None.

    -{1,2}([A-Za-z_][\w.-]*)|([A-Za-z_][\w-]*):  (the whole word)
    """
    if word.startswith("-"):
        name = word[2:] if word.startswith("--") else word[1:]
        return name if _starts_name(name) and _only_word_chars(name[1:], "_.-") else None
    if word.endswith(":") and _starts_name(word) and _only_word_chars(word[1:-1], "_-"):
        return word[:-1]
    return None


def _redact_word(word, seps=":"):
    spaced = word.split() != [word]  # any whitespace in it (word is not empty)
    name, equals, value = word.partition("=")
    if equals and _is_assignment_name(name) and looks_secret(name) and (word.startswith("-") or not spaced):
        return name + "=" + REDACTED  # the whole value, commas and spaces included
    if equals and name in USER_FLAGS:  # --user=alice:password (--user=alice%pw after smbclient)
        at = _find_first(value, 0, seps)
        if at < len(value):
            return name + "=" + value[:at + 1] + REDACTED
    if spaced:  # an argument that is itself a command line, as in sh -c "..."
        return redact_command(word, limit=None, seps=seps)
    if "@" in word:  # speed: most words hold neither "@" nor "="
        word = _hide_url_passwords(word)
    return _hide_assignments(word) if equals else word


def _is_assignment_name(name):
    r"""-{0,2}[A-Za-z_][\w.-]*  (the whole name before the first "=")"""
    bare = name[2:] if name.startswith("--") else name[1:] if name.startswith("-") else name
    return _starts_name(bare) and _only_word_chars(bare[1:], "_.-")


def _hide_url_passwords(word):
    r"""Every ([A-Za-z][\w+.-]*://[^\s:/@]*):[^\s@/]*@ becomes \1:<redacted>@, left to right.

    Here and in _hide_assignments, word holds no whitespace (_redact_word sends those to redact_command).
    """
    out, copied, start = [], 0, 0  # start: where the next match may begin
    while True:
        sep = word.find("://", start)
        if sep < 0:
            break
        scheme = sep  # the scheme: the [\w+.-] characters before "://" (from start on), holding a letter
        while scheme > start and _is_word_char(word[scheme - 1], "_+.-"):
            scheme -= 1
        colon = _find_first(word, sep + 3, ":/@")  # past the user
        at = _find_first(word, colon + 1, "@/")  # past the password
        found = any(_is_ascii_letter(c) for c in word[scheme:sep])
        if not (found and word[colon:colon + 1] == ":" and word[at:at + 1] == "@"):
            start = sep + 1
            continue
        out += [word[copied:colon + 1], REDACTED]
        copied, start = at, at + 1
    out.append(word[copied:])
    return "".join(out)


def _hide_assignments(word):
    r"""([\w.-]+)=("[^"]*"|'[^']*'|[^\s&;,"']+), left to right: the value becomes <redacted> where the
    name looks like a secret."""
    out, copied, start = [], 0, 0
    while True:
        equals = word.find("=", start)
        if equals < 0:
            break
        name = equals  # the name: the [\w.-] characters before "=" (from start on), at least one
        while name > start and _is_word_char(word[name - 1], "_.-"):
            name -= 1
        end = _value_end(word, equals + 1)
        if name == equals or end is None:
            start = equals + 1
            continue
        if looks_secret(word[name:equals]):
            out += [word[copied:equals + 1], REDACTED]
            copied = end
        start = end
    out.append(word[copied:])
    return "".join(out)


def _value_end(word, i):
    r"""Where "[^"]*"|'[^']*'|[^\s&;,"']+ starting at word[i] ends, or None when it does not match."""
    quote = word[i:i + 1]
    if quote in ('"', "'"):
        close = word.find(quote, i + 1)
        return close + 1 if close >= 0 else None
    end = _find_first(word, i, "&;,\"'")
    return end if end > i else None


def _find_first(word, i, chars):
    """The index of the first of chars in word from i on, len(word) if none."""
    end = len(word)
    for c in chars:
        found = word.find(c, i, end)
        if found >= 0:
            end = found
    return end


def _split_spaces(command):
    r"""re.split(r"(\s+)", command): the words, with the whitespace runs between them at odd indexes."""
    parts, end = [""], 0  # parts ends with a word ("" until the first)
    for word in command.split():  # str.split() and re agree on what \s is
        start = command.find(word, end)
        if start > end:
            parts += [command[end:start], word]
        else:  # the first word, at the very start
            parts[-1] = word
        end = start + len(word)
    if end < len(command):  # whitespace after the last word, or nothing but whitespace
        parts += [command[end:], ""]
    return parts


def _starts_name(text):
    """[A-Za-z_] at the start of text."""
    return _is_ascii_letter(text[:1]) or text[:1] == "_"


def _is_ascii_letter(c):
    return c.isascii() and c.isalpha()


def _is_word_char(c, extra):
    r"""[\w<extra>] for one character."""
    return c.isalnum() or c in extra


def _only_word_chars(text, extra):
    r"""[\w<extra>]* for the whole text."""
    for c in extra:
        text = text.replace(c, "")
    return not text or text.isalnum()


def _cap(command, limit, cut=False):
    """At most ``limit`` characters, ending in "..." where something was left out (``cut``: before this)."""
    if limit is not None and len(command) > limit:
        return command[: limit - 3] + "..."
    return command + "..." if cut else command
