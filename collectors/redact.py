"""Redact obvious secrets from command lines before they leave the host (docs/document.md).

Rules, applied per argument (and per word inside an argument holding spaces, as in ``sh -c "..."``):

- ``--name=value``, ``-name=value`` and environment-style ``NAME=value`` (also inside a URL query,
  ``?token=abc``) whose name looks like a secret: the value becomes ``<redacted>``;
- ``--name value`` pairs, the short ``-p value`` and ``Name: value`` header words (``Authorization:
  Bearer x``): the next word becomes ``<redacted>``, unless it starts with ``-`` (then it is an option);
- ``scheme://user:password@host``: the password becomes ``<redacted>``.

A name looks like a secret when it contains pass, token, secret, key, auth or credential (any case).
Redacting too much is the safe error. The result is capped at MAX_COMMAND characters.
"""

import re

REDACTED = "<redacted>"
MAX_COMMAND = 1024

SECRET_NAME = re.compile(r"pass|token|secret|key|auth|credential", re.IGNORECASE)
SHORT_SECRET_FLAGS = ("-p",)  # mysql/sshpass style; a redacted port number is harmless
AUTH_SCHEMES = ("bearer", "basic", "token", "digest")

_WHOLE_ASSIGNMENT = re.compile(r"(-{0,2}[A-Za-z_][\w.-]*)=(.*)", re.DOTALL)
_ASSIGNMENT = re.compile(r"""([\w.-]+)=("[^"]*"|'[^']*'|[^\s&;,"']+)""")
_URL_PASSWORD = re.compile(r"([A-Za-z][\w+.-]*://[^\s:/@]*):[^\s@/]*@")
_SECRET_FLAG = re.compile(r"-{1,2}([A-Za-z_][\w.-]*)|([A-Za-z_][\w-]*):")
_SPACES = re.compile(r"(\s+)")


def redact_argv(argv, limit=MAX_COMMAND):
    """One redacted command line (str) from an argv list of str."""
    return _cap(" ".join(_redact_words(list(argv))), limit)


def redact_command(command, limit=MAX_COMMAND):
    """A redacted copy of a command line given as one string (split on whitespace, spacing kept)."""
    parts = _SPACES.split(command)
    parts[0::2] = _redact_words(parts[0::2])
    return _cap("".join(parts), limit)


def _redact_words(words):
    out = []
    pending = False  # the previous word asked for its value to be hidden
    for word in words:
        if not word:
            out.append(word)
            continue
        if pending and not word.startswith("-"):
            if word.lower() in AUTH_SCHEMES:  # "Authorization: Bearer <token>": hide the token
                out.append(word)
                continue
            out.append(REDACTED)
            pending = False
            continue
        pending = _is_secret_flag(word)
        out.append(word if pending else _redact_word(word))
    return out


def _is_secret_flag(word):
    if word in SHORT_SECRET_FLAGS:
        return True
    m = _SECRET_FLAG.fullmatch(word)
    return bool(m and SECRET_NAME.search(m.group(1) or m.group(2)))


def _redact_word(word):
    spaced = any(c.isspace() for c in word)
    m = _WHOLE_ASSIGNMENT.fullmatch(word)
    if m and SECRET_NAME.search(m.group(1)) and (word.startswith("-") or not spaced):
        return m.group(1) + "=" + REDACTED  # the whole value, commas and spaces included
    if spaced:  # an argument that is itself a command line, as in sh -c "..."
        return redact_command(word, limit=None)
    word = _URL_PASSWORD.sub(r"\1:" + REDACTED + "@", word)
    return _ASSIGNMENT.sub(_redact_assignment, word)


def _redact_assignment(m):
    return m.group(1) + "=" + REDACTED if SECRET_NAME.search(m.group(1)) else m.group(0)


def _cap(command, limit):
    if limit is not None and len(command) > limit:
        return command[: limit - 3] + "..."
    return command
