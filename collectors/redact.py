"""Redact obvious secrets from command lines before they leave the host (docs/document.md).

Rules, applied per argument (and per word inside an argument holding spaces, as in ``sh -c "..."``):

- ``--name=value``, ``-name=value`` and environment-style ``NAME=value`` (a shell's ``NAME+=value`` too; also
  inside a URL query, ``?token=abc``, and inside another's value, ``--env=HF_TOKEN=abc``) whose name looks like
  a secret: the value becomes ``<redacted>``;
- ``--name value`` pairs, the short ``-p value`` and ``Name: value`` header words (``Authorization:
  Bearer x``; also written into an option or setting, ``-HAuthorization:``, ``http.extraHeader=
  Authorization:``, and ending in the scheme, ``Authorization:Bearer x``): the next word becomes
  ``<redacted>``, unless it starts with ``-`` (then it is an option), and where the flag's word opens a
  quote, the words up to its close; after ``-H`` or ``--header``, and
  written into them, a header's value written right after its colon (``-H X-Api-Key:abc``);
- a key and its value in JSON or a Python dict written into an argument (JSON_PAIR): the value, where the
  key looks like a secret (``{"api_key": "x"}``, ``{\\"token\\":\\"x\\"}``), also where the key's colon is a word of
  its own or begins the value's (``{ "token" : "x" }``, ``"token" :"x"``);
- Python code assigning to a name that looks like a secret with spaces around ``=`` or ``+=`` (``token = "x"``,
  ``os.environ["HF_TOKEN"] ="x"``, ``login(token= "x")``, ``TOKEN += "x"``, ``d[ "token" ] = "x"``, after an
  annotation: ``token: str = "x"``) or passing a value after a call's quoted secret key (``setdefault('HF_TOKEN',
  'x')``, and with no space, CALL_PAIR: ``getenv('HF_TOKEN','x')``): the value; where the value opens a call,
  the words up to the one that closes it (``token = os.getenv('X', 'x')``);
- ``scheme://user:password@host``: the password becomes ``<redacted>``; of ``http(s)://user@host`` (no
  password), the user, mostly a token (``git clone https://ghp_x@github.com/o/r``);
- a webhook's or a bot's secret in a URL's path: of a host named hook(s) or webhook..., the path
  (``https://hooks.slack.com/<redacted>``); else after a path segment so named, the rest
  (``/api/webhooks/<redacted>``); else a Telegram bot's token (``/bot<redacted>/sendMessage``);
- ``-u user:password`` and ``--user user:password`` (``--user=...``; curl, and ``-U``/``--proxy-user``):
  what follows the first ``:`` becomes ``<redacted>`` (``python -u train.py`` holds no ``:``), also where it
  is written into the flag (``-ualice:password``, not ``-url=http://h:80``);
- after a word naming a program of PASSWORD_FLAGS, its password flags' value: written into it (``mysql
  -phunter2``: the rest of the word) or the next word (``ipmitool -P hunter2``); after one of
  PASSWORD_OPTIONS, the next word only (``openssl enc -k pw``, not ``-keyout``);
- after a word naming a program of USER_SEPARATORS, the user flags' rule above splits at that program's
  character too, whichever comes first (``smbclient -U alice%pw``, ``lftp -u alice,pw``), also inside a
  later argument holding spaces (``lftp -e "open -u alice,pw h"``), and applies to its flags of
  PROGRAM_USER_FLAGS too (``wbinfo -a alice%pw``);
- after a word naming a program of SECRET_ARGUMENTS and then one of its words there (``wandb login``,
  ``htpasswd -b``, a short flag counting inside a cluster: ``-nb``), every later word that does not start
  with ``-``, up to a shell operator outside ``$(...)`` (``wandb login KEY``, ``aws configure set
  aws_secret_access_key X``);
- a program counts named also right after a shell operator, ``(`` or ``=`` in its word (``cd /x&&mysql``,
  ``$(mysql``, ``|sshpass``, ``--wrap=mysql``), and a flag also after the quote that opens its word (``mysql
  "-phunter2"``, ``'--token' x``; not ``-p"``, where the quote closes a string);
- quotes escaped inside a quoted string count as quotes (``\\"``, ``\\\\\\"``, shlex.quote's ``'\\''``);
- after -H or --header, a header given as one argument holding spaces, whole (``Cookie: a=1; b=2``);
  an argument NAME=value holding spaces after -e, --env, env or export, whole;
- inside an argument holding spaces, a hidden value that opens a quote (``TOKEN='abc def'``, ``--token
  "a b"``; not ``'TOKEN=x cmd'``, opened before the value) hides the words up to the one that closes it
  (each of ' and " counted apart).

A name looks like a secret when it contains pass, token, secret, key, auth, credential, pwd, cookie, jwt or
bearer (any case), or is one of SECRET_NAMES (a signed URL's ``sig=``/``Signature=``, a token's ``--pat``), or
ends in one of SECRET_ENDS (``GITHUB_PAT``, ``--hf_pat``).
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

SECRET_WORDS = ("pass", "token", "secret", "key", "auth", "credential", "pwd", "cookie", "jwt", "bearer")
#: Names that are secrets only as a whole (any case): the signature of a signed URL (Azure's SAS ?sig=,
#: S3's X-Amz-Signature, CloudFront's Signature=), too short or too common a word to look for inside names.
#: And a personal access token: ``--pat`` (GitHub's runner ``config.sh --pat``), ``PAT=``.
SECRET_NAMES = ("sig", "signature", "x-amz-signature", "x-goog-signature", "pat")
#: Name endings that are secrets: a personal access token's (GITHUB_PAT, --hf_pat; not --compat, --path).
SECRET_ENDS = ("_pat", "-pat", ".pat")
SHORT_SECRET_FLAGS = ("-p",)  # mysql/sshpass style; a redacted port number is harmless
AUTH_SCHEMES = ("bearer", "basic", "token", "digest")
USER_FLAGS = ("-u", "--user", "-U", "--proxy-user")  # curl's user:password
HEADER_FLAGS = ("-H", "--header")  # curl's and wget's: a header "Name: value" follows
#: A program named right after one of these in a word still counts (cd /x&&mysql, true;mysql, $(mysql, |sshpass,
#: and an option's value: sbatch --wrap=mysql)
SHELL_OPERATORS = ";&|(`="
#: What may open a word before a flag's or program's name: quotes, and quotes escaped inside a shell string
#: (ssh h 'bash -c "curl -H \\"X-Api-Key: k\\""', shlex.quote's '\\'')
QUOTES = "'\"\\"
#: Programs with a short flag that takes a password, written into it (mysql -phunter2) or as the next word
#: (ipmitool -P hunter2), and those flags. They count only after a word naming one (its file name, exactly),
#: since elsewhere these flags are mostly something else (gcc -pthread, mkdir -pv, scp -P 2222, rsync -P).
PASSWORD_FLAGS = dict.fromkeys((
    "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck", "mysqlshow", "mysqlslap", "mysqlbinlog",
    "mysqlpump", "mysqlsh", "mariadb", "mariadb-dump", "mariadb-admin", "mariadb-import", "mariadb-check",
    "mariadb-show", "mariadb-slap", "mariadb-binlog", "sshpass", "7z", "7za", "7zz", "rar", "unrar", "racadm",
), ("-p",))
PASSWORD_FLAGS.update(dict.fromkeys((
    "zip", "unzip", "sqlcmd", "bcp", "mosquitto_pub", "mosquitto_sub", "mosquitto_rr", "p4",
), ("-P",)))
PASSWORD_FLAGS.update(dict.fromkeys((  # OpenLDAP's bind password
    "ldapsearch", "ldapmodify", "ldapadd", "ldapdelete", "ldapmodrdn", "ldapcompare", "ldapwhoami", "ldapexop",
    "ldapvc",
), ("-w",)))
PASSWORD_FLAGS.update(dict.fromkeys((  # net-snmp's v3 passphrases and v1/v2c community
    "snmpwalk", "snmpbulkwalk", "snmpget", "snmpgetnext", "snmpbulkget", "snmpset", "snmptable", "snmptrap",
    "snmpinform", "snmpdelta", "snmpdf", "snmpstatus", "snmptest", "snmpusm", "snmpvacm", "snmpnetstat",
), ("-A", "-X", "-c")))
PASSWORD_FLAGS.update(dict.fromkeys((  # FreeIPMI's password and K_g key
    "ipmi-sensors", "ipmi-sel", "ipmi-chassis", "ipmi-config", "ipmi-fru", "ipmi-oem", "ipmi-raw", "ipmi-dcmi",
    "ipmi-power", "ipmipower", "ipmiconsole", "ipmi-console", "ipmi-pet", "bmc-info", "bmc-device",
), ("-p", "-k")))
PASSWORD_FLAGS.update(dict.fromkeys(("xfreerdp", "xfreerdp3", "wlfreerdp"), ("/p:", "/gp:")))
PASSWORD_FLAGS.update({
    "ipmitool": ("-P", "-k", "-y"), "redis-cli": ("-a",), "ldappasswd": ("-w", "-a", "-s"),
    "ssh-keygen": ("-N", "-P"),
})
#: Programs with an option whose next word is a password but never written into it (openssl's options are
#: words of their own: -k hunter2, while -keyout is another option), and those options. As PASSWORD_FLAGS.
PASSWORD_OPTIONS = {"openssl": ("-k", "-K")}
#: Programs whose user flag's value joins the password with another character than curl's ":" (Samba's
#: ``-U alice%pw``, lftp's ``-u alice,pw``), and that character. Like PASSWORD_FLAGS, only after a word
#: naming one.
USER_SEPARATORS = dict.fromkeys((
    "smbclient", "rpcclient", "smbcacls", "smbcquotas", "smbget", "smbtree", "net", "samba-tool", "wbinfo",
    "winexe", "smbtorture", "mdsearch", "ldbsearch", "ldbmodify", "ldbadd", "ldbdel", "ldbedit", "ldbrename",
), "%")
USER_SEPARATORS["lftp"] = ","
#: Programs with user flags of their own (user%password; USER_SEPARATORS gives the character), and those
#: flags: Samba's wbinfo -a alice%pw. Its --authenticate and --krb5auth look like secrets already.
PROGRAM_USER_FLAGS = {"wbinfo": ("-a", "-K", "--pam-logon", "--ccache-save")}
#: Programs that take secrets as plain arguments after one of their words (a subcommand, or a short flag,
#: also inside a cluster: htpasswd -nb user pw), and those words. Like PASSWORD_FLAGS, only after a word
#: naming one.
SECRET_ARGUMENTS = {
    "wandb": ("login",), "vault": ("login",), "htpasswd": ("-b",), "aws": ("set",),
    "rclone": ("create", "update", "password"), "rabbitmqctl": ("add_user", "change_password", "authenticate_user"),
}
_PROGRAMS = frozenset().union(PASSWORD_FLAGS, PASSWORD_OPTIONS, USER_SEPARATORS, SECRET_ARGUMENTS)
_ENDINGS = frozenset(name[-2:] for name in _PROGRAMS)  # how their names end

#: A key and its value in JSON or a Python dict written into an argument (--config='{"api_key":"x"}', quotes
#: escaped too), or set by Python code (os.environ['HF_TOKEN']='x'): its value is hidden where its key looks
#: like a secret; a value that is an object or a list is
#: not, its own keys are looked at.
JSON_PAIR = (r"""(?<!\\)(\\*["'])([A-Za-z_][\w.-]*)\1(?::|\]=)("""
             r""""(?:[^"\\]|\\.)*(?:"|\Z)|'(?:[^'\\]|\\.)*(?:'|\Z)|(\\+["'])(?:.*?\4|.*)|[^,}\]{\[]*)""")
#: A call's quoted key right after its "(" and its value after the "," with no space (setdefault('HF_TOKEN','x'),
#: os.getenv("API_KEY","x")): its value is hidden as JSON_PAIR's (an unquoted one ends at a ")" too).
CALL_PAIR = (r"""\((\\*["'])([A-Za-z_][\w.-]*)\1,("""
             r""""(?:[^"\\]|\\.)*(?:"|\Z)|'(?:[^'\\]|\\.)*(?:'|\Z)|(\\+["'])(?:.*?\4|.*)|[^,)}\]{\[]*)""")
#: The _quote_tokens of a word holding no quote, shared (speed: no new dict for every word); never written to.
_NO_QUOTES = {}
_patterns = {}  # {JSON_PAIR or CALL_PAIR: re.compile(it, re.DOTALL)}, for the first word that may hold one
_secret_pattern = []  # re.compile("pass|token|...|\A(?:sig|...)\Z", re.IGNORECASE), for the first non-ASCII name


def redact_argv(argv, limit=MAX_COMMAND, cut=False):
    """One redacted command line (str) from an argv list of str; of a long one, its first MAX_INPUT
    characters only (then "..."). ``cut``: argv is the start of a longer one (/proc/<pid>/cmdline read up to
    MAX_INPUT bytes), its last word cut short: a URL there is left out, as where MAX_INPUT cuts one."""
    words, room = [], MAX_INPUT
    for word in argv:
        if len(word) > room:
            head = _cut(word, max(room, 0))
            words += [head] if head.strip() else [] if words else [word[:room]]  # the only word: cut all the same
            return _cap(" ".join(_redact_words(words)), limit, cut=True)
        words.append(word)
        room -= len(word) + 1
    if cut and words:
        head = _without_cut_url(words[-1])
        words[-1:] = [head] if head.strip() or len(words) == 1 else []
    return _cap(" ".join(_redact_words(words)), limit, cut=cut)


def redact_command(command, limit=MAX_COMMAND, seps=":", users=USER_FLAGS):
    """A redacted copy of a command line given as one string (split on whitespace, spacing kept); of a long
    one, its first MAX_INPUT characters only. ``seps``: what joins a user flag's user and password, and
    ``users``: the user flags, as the words around it say (``lftp -e "open -u alice,pw h"``: the program is
    named outside the string)."""
    head = _cut(command, MAX_INPUT)
    parts = _split_spaces(head if head.strip() else command[:MAX_INPUT])  # the only word: kept, cut
    # the words a line break comes before: a script's next line is another command
    # (not after a backslash that continues the line: an odd number of them ends the word before)
    breaks = frozenset(i // 2 + 1 for i in range(1, len(parts), 2) if "\n" in parts[i]
                       and (len(parts[i - 1]) - len(parts[i - 1].rstrip("\\"))) % 2 == 0)
    parts[0::2] = _redact_words(parts[0::2], seps, users, spans=True, breaks=breaks)
    return _cap("".join(parts), limit, cut=len(command) > MAX_INPUT)


def looks_secret(name):
    """Whether name contains a secret word in any case, is a secret name or ends in SECRET_ENDS:
    re.search("pass|token|...|\\A(?:sig|...)\\Z|[_.-]pat\\Z", name, re.IGNORECASE)."""
    if name.isascii():
        name = name.lower()
        return (any(word in name for word in SECRET_WORDS) or name in SECRET_NAMES
                or name.endswith(SECRET_ENDS))
    # beyond ASCII, re's case-insensitive match differs from str.lower() (it takes "ſ" for "s", "K" for "k")
    if not _secret_pattern:
        import re

        pattern = "|".join(SECRET_WORDS) + r"|\A(?:" + "|".join(SECRET_NAMES) + r")\Z|[_.-]pat\Z"
        _secret_pattern.append(re.compile(pattern, re.IGNORECASE))
    return _secret_pattern[0].search(name) is not None


def _redact_words(words, seps=":", users=USER_FLAGS, spans=False, breaks=frozenset()):
    """The words redacted. ``spans``: they are the words of one command line (split on whitespace), where a
    quote opened by a hidden value hides the words up to the one that closes it. ``breaks``: the indexes of
    the words that begin a line (a program's plain secret arguments end there)."""
    out = []
    # spans: the parity of each quote of the words before this one, ' and " counted apart, and apart again by
    # how deep they are escaped (', \', \\\', ...: _quote_tokens); kept as it goes (speed)
    parity = {}
    pending = False  # the previous word asked for its value to be hidden
    user = False  # the previous word was a user flag (-u/--user): a user:password may follow
    header = False  # the previous word was -H/--header: a Name:value header may follow
    rest = False  # a program's word of SECRET_ARGUMENTS was seen: the later words are hidden (not options)
    depth = 0  # the ( opened since then and not closed: $(cat f) does not end them
    assigning = False  # argv: the previous word was -e, --env, env or export (or an assignment after them)
    held = ""  # spans: the quote a pending flag's word opened ("Cookie: a=1; b=2"): the value runs to its close
    flags = set()  # the password flags and options of the programs named so far (PASSWORD_FLAGS/_OPTIONS)
    glued = ()  # their password flags that may be written into (PASSWORD_FLAGS)
    triggers = ()  # their words of SECRET_ARGUMENTS
    letters = ""  # the letters of those that are short flags
    named = ()  # the programs of those tables named so far
    # seps: what joins a user flag's user and password: curl's ":", and those of the programs named so far
    # users: the user flags: USER_FLAGS, and those of the programs named so far (PROGRAM_USER_FLAGS)
    span = ""  # spans: the quote that a hidden value opened: the words are hidden until it closes
    opened = ""  # spans: the quote a hidden value left open (held): span, after this word
    heredoc = False  # a here-document began while secret arguments were hidden: lines do not end them
    keyed = False  # the previous word was a secret JSON key before its colon ({"token" : "x"})
    colon = False  # the previous word was that key's colon, alone: this word is its value
    paren = 0  # spans: the ( that a hidden value of Python code left open: the words are hidden until they close
    pquote = ""  # spans: the Python string those words left open (its parentheses are not counted)
    for i, word in enumerate(words):
        was_keyed, keyed = keyed, False
        before = parity
        tokens = _quote_tokens(word) if spans and ("'" in word or '"' in word) else _NO_QUOTES  # once per word
        if tokens:
            parity = dict(parity)
            for token, n in tokens.items():
                parity[token] = parity.get(token, 0) ^ (n & 1)
        if rest and word[:2] == "<<":
            heredoc = True  # vault login - <<EOF: the lines after it are the secret, not the next commands
        if rest and spans and i in breaks and not heredoc:
            rest = False  # a new line: another command
        elif rest and spans and word[:1] == "-":
            at, depth = _command_end(word, depth)
            rest = at == len(word)  # an option that ends with a shell operator (set -x;): another command
        if not word:
            out.append(word)
            continue
        if paren and i in breaks:
            pquote = ""  # a line break ends a string left open (a quote in a comment): the next line is code
        if span or paren:
            out.append(REDACTED)
            if tokens.get(span, 0) % 2:  # closes it (and a header's)
                span = held = ""
            if paren:  # a call's arguments (token = os.getenv('X', 'x')): to the word that closes it
                paren, pquote = _parens(word, paren, pquote)
            continue
        bare = word  # the word without the quotes that open it (and close it): '--token', "-phunter2", \"-p\"
        if word[0] in QUOTES:  # not -p" (the quote closes a string: its value is not the next word)
            bare = word.strip(QUOTES) or word
        program = bare.rpartition("/")[2].rstrip(QUOTES)  # sh -c 'mysql ...' split: 'mysql; --wrap="mysql"
        if program[-2:] not in _ENDINGS:  # speed: most words end as no program's name does
            pass
        elif program not in _PROGRAMS:
            for op in SHELL_OPERATORS:  # cd /x&&mysql, $(mysql
                if op in program:
                    program = program.rpartition(op)[2]
            program = program.lstrip(QUOTES)
        if program in _PROGRAMS and program not in named:
            named += (program,)
            flags.update(PASSWORD_FLAGS.get(program, ()), PASSWORD_OPTIONS.get(program, ()))
            glued += PASSWORD_FLAGS.get(program, ())
            users += PROGRAM_USER_FLAGS.get(program, ())
            for trigger in SECRET_ARGUMENTS.get(program, ()):
                triggers += (trigger,)
                if trigger[0] == "-" and len(trigger) == 2:  # a short flag: also inside a cluster (-nb)
                    letters += trigger[1]
            sep = USER_SEPARATORS.get(program)
            if sep is not None and sep not in seps:
                seps += sep
        new = None
        start = 0  # where in word the value that new hides starts (a quote it opens hides more words)
        valued, colon = colon, False
        if valued and _opens_object(word):  # an object or a list: its own keys are looked at
            pending = False
        if pending and (valued or not word.startswith("-")):  # a key's value may start with - ({"token" : -1})
            if word.lower() in AUTH_SCHEMES:  # "Authorization: Bearer <token>": hide the token
                out.append(word)
                continue
            new = REDACTED
            pending = user = header = False
            if held and not tokens.get(held, 0) % 2:  # the header's quote is not closed: hide to it
                opened = held
            held = ""
            if valued and spans:  # Python code's value: a call it opens hides its arguments (os.getenv('X',)
                paren, pquote = _parens(word, 0, "")
            elif word[-1] == "=" and words[i - 1][-1:] == ":" and _assigns_secret(words, i):
                pending, colon = True, True  # token: str= "x": the annotation was hidden, its value follows
        elif rest and not word.startswith("-"):
            new = REDACTED
            at, depth = _command_end(word, depth) if spans else (len(word), 0)  # argv: a character of the secret
            if at < len(word):  # a shell operator ends the command: KEY;next, KEY), &&
                rest = False
                new = (new if at else "") + word[at:]
        elif user and not word.startswith("-"):
            at = _find_first(word, 0, seps)
            if at < len(word):
                new = word[:at + 1] + REDACTED
                user = header = False
        head = bare[:2]
        # a value written into a flag (and no whitespace): speed: only words that may hold one are looked at
        if new is None and (header or word.startswith(("-H", "--header="))) and word.split() != [word]:
            # argv: -H "Cookie: a=1; b=2", --header="Cookie: ...", -H"Cookie: ...": a header whole
            at = _header_value(word, 0 if header else 2 if word.startswith("-H") else 9)
            if at > 0:
                keep, value = _after_spaces(word[:at], word[at:])
                scheme = value.split(None, 1)[0] if value.strip() else ""
                if scheme.lower() in AUTH_SCHEMES:  # Authorization: Bearer x: the token goes
                    keep, value = _after_spaces(keep + scheme, value[len(scheme):])
                new = keep + REDACTED if value.strip() else word  # Authorization: Bearer, alone, holds none
                pending = user = header = False
        if new is None and len(bare) > 2 and (header or glued or head[0] == "-" and (
                head in users or head == "-H" or bare.startswith("--header="))) and word.split() == [word]:
            lead = len(word) - len(word.lstrip(QUOTES))  # the quotes before bare
            at = _find_first(bare, 2, seps) if head in users else len(bare)
            skip = 0 if header else 2 if head == "-H" else 9 if bare.startswith("--header=") else -1
            value = _header_value(bare, skip) if skip >= 0 else -1
            # curl -ualice:password, smbclient -Ualice%pw, wbinfo -aalice%pw; not -url=h:80
            if at < len(bare) and "=" not in bare[:at]:
                new = word[:lead + at + 1] + REDACTED
                start = lead + 2
                pending = user = header = False
            elif value > 0 and bare[value:].lower() not in AUTH_SCHEMES:  # -H X-Api-Key:abc
                start = lead + value
                new = word[:start] + REDACTED
                pending = user = header = False
            else:
                for flag in glued:
                    if bare.startswith(flag) and len(bare) > len(flag):  # mysql -phunter2
                        start = lead + len(flag)
                        new = word[:start] + REDACTED
                        pending = user = header = False
                        break
        if new is None and was_keyed and word[0] == ":":  # {"token" : "x"}, {"token" :"x"}
            if word == ":":
                new, pending, colon = word, True, True
            elif not _opens_object(word[1:]):  # :{"password": x} has keys of its own
                new, start = ":" + REDACTED, 1
        # Python code: token = "x", os.environ["HF_TOKEN"] ="x", TOKEN += "x", d[ "token" ]= "x" (speed: the name
        # is looked at only after an assignment's operator)
        if new is None and word[0] in "=+]" and i:
            op = _leading_operator(word)
            if not op or not _python_target(words, i, word[:word[0] == "]"]):
                pass
            elif op == len(word):
                new, pending, colon = word, True, True
            else:
                new, start = word[:op] + REDACTED, op
                if spans:  # a call it opens hides its arguments (=os.getenv('X', 'x'))
                    paren, pquote = _parens(word[op:], 0, "")
        if new is None:
            user = bare in users
            header = bare in HEADER_FLAGS
            pending = _is_secret_flag(bare) or bare in flags
            colon = pending and word.endswith(('":', "':"))  # a JSON key: its value is looked at as a key's
            keyed = not pending and _is_json_key(word)
            held = _opened_quote(word, before, 0, tokens) if pending and tokens else ""
            if not pending and word[-1] in "=," and _assigns_secret(words, i):  # token= "x", setdefault('KEY', x)
                # the word's own secrets stay hidden (password="a";token=), its last name's value is the next word
                new = (_redact_word(word[:-1], seps, users, whole=assigning) + "=" if word[-1] == "="
                       else _redact_word(word, seps, users, whole=assigning))
                pending, colon = True, True
            elif not spans and word.startswith("--env=") and word.split() != [word]:  # --env='TOKEN=a b', whole
                new = "--env=" + _redact_word(word[6:], seps, users, whole=True)
            else:
                new = _redact_word(word, seps, users, whole=assigning)
                if spans and new != word and new.endswith(REDACTED) and "(" in word:  # token=os.getenv('X', 'x')
                    at = _secret_value_start(word)
                    if at:  # the hidden value opens a call: its arguments go too, as with spaces around "="
                        paren, pquote = _parens(word[at:], 0, "")
            start = -1  # after the first "=": TOKEN='a b', not 'TOKEN=x cmd' (there the quote holds a command)
            if triggers and not rest:
                rest = bare in triggers or head[:1] == "-" and head != "--" and any(c in bare for c in letters)
                depth = 0
        if not spans:  # docker run -e 'HF_TOKEN=a b', env A=1 'TOKEN=a b' cmd: each a value, spaces and all
            assigning = word in ("-e", "--env", "env", "export") or assigning and "=" in word
        out.append(new)
        if tokens and new != word:
            span = _opened_quote(word, before, start if start >= 0 else word.find("=") + 1, tokens)
        if opened:
            span, opened = opened, ""
    return out


def _opens_object(text):
    """Whether text, after the quotes that open it, starts a JSON object or list: [\\'"]*[{[]."""
    return text.lstrip(QUOTES)[:1] in ("{", "[")


def _is_json_key(word):
    r"""Whether word ends in a quoted key whose name looks like a secret, its colon in a later word:
    (?<!\\)(\\*["'])([A-Za-z_][\w.-]*)\1\Z (the name as JSON_PAIR's), as in '{"token" : "x"}'."""
    if word[-1:] not in ("'", '"'):
        return False
    closer = len(word) - 1  # the quote at the end and the backslashes before it
    while closer > 0 and word[closer - 1] == "\\":
        closer -= 1
    name = closer
    while name > 0 and _is_word_char(word[name - 1], "_.-"):
        name -= 1
    quote = word[closer:]
    opener = name - len(quote)
    return (name < closer and _starts_name(word[name:closer]) and word[opener:name] == quote and opener >= 0
            and not (opener and word[opener - 1] == "\\") and looks_secret(word[name:closer]))


def _ends_in_secret_name(word):
    r"""Whether word ends in a name Python code assigns a secret to: an identifier, dotted or not, that looks like
    a secret and starts the word (after the quotes of a shell's string: sh -c "python -c \"token = 'x'\"") or
    follows one of ( , { [ ; (token, openai.api_key, login(token, self.password), or a quoted key in brackets
    (os.environ["HF_TOKEN"]): (?:\A[\\'"]*|[(,{[;])[A-Za-z_][\w.]*\Z or [ then _is_json_key then ]."""
    if word[-1:] == "]":
        return "[" in word and _is_json_key(word[:-1])
    i = len(word)
    while i and _is_word_char(word[i - 1], "_."):
        i -= 1
    return (i < len(word) and (i == 0 or word[i - 1] in "(,{[;" or not word[:i].strip("\\'\""))
            and _starts_name(word[i:]) and looks_secret(word[i:]))


def _assigns_secret(words, i):
    """Whether words[i] ends where Python code's secret value follows in the next word: a secret name (with the
    words before it, _python_target) and "=" or "+=" (token= "x", os.environ["HF_TOKEN"]= "x", TOKEN+= "x",
    d[ "token"]= "x"; not ==, !=, <=, >=), or a call's quoted secret key and "," (os.environ.setdefault('HF_TOKEN',
    'x'), os.putenv("HF_TOKEN", x), also with a space after its "(": setdefault( 'HF_TOKEN', 'x' ))."""
    word = words[i]
    if word[-1:] == "=":
        head = word[:-1]
        if head[-1:] == "+":
            head = head[:-1]
        elif head[-1:] in ("=", "!", "<", ">"):
            return False
        # "" (a word "=" or "+="): the rule for an operator that starts a word has looked at the word before
        return head != "" and _python_target(words, i, head)
    return (word[-1:] == "," and word[-2:-1] in ("'", '"') and ("(" in word or i > 0 and words[i - 1][-1:] == "(")
            and _is_json_key(word[:-1]))


def _secret_value_start(word):
    r"""Where the value of word's last assignment to a name that looks like a secret starts (after its = or +=,
    the name [\w.-]+ right before it), else 0."""
    equals = word.rfind("=")
    while equals > 0:
        name, stop = _assigned_name(word, equals)
        if name < stop and looks_secret(word[name:stop]):
            return equals + 1
        equals = word.rfind("=", 0, equals)
    return 0


def _parens(text, depth, quote):
    """(depth, quote) after text: the ( not yet closed, counted outside Python's strings (never below 0), and
    the string text leaves open ("" if none). A string opens with ' or ", or with \\' or \\" (code inside a
    shell's quotes), and closes with what opened it; in one opened by a plain quote a backslash escapes the
    character after it (Python's \\')."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if len(quote) == 2:  # opened by \" : closed by \" alone
                if text.startswith(quote, i):
                    quote, i = "", i + 2
                    continue
            elif c == "\\":
                i += 2
                continue
            elif c == quote:
                quote = ""
        elif c == "\\" and text[i + 1:i + 2] in ("'", '"'):
            quote, i = text[i:i + 2], i + 2
            continue
        elif c == "'" or c == '"':
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        i += 1
    return depth, quote


def _leading_operator(word):
    r"""The length of the assignment operator word starts with, after a "]" closing a key's brackets, else 0:
    \]?\+?=(?!=) (=, +=, ]=, ]+=; not ==)."""
    at = word[:1] == "]"
    at += word[at:at + 1] == "+"
    return at + 1 if word[at:at + 1] == "=" and word[at + 1:at + 2] != "=" else 0


def _python_target(words, i, head):
    r"""Whether Python code assigns a secret where words[i] holds an assignment's operator after ``head`` (""
    where the word starts with it, "]" where it closes brackets). The target is head, or the word before where
    head is ""; a "]" alone takes the word before it, and then a target ending in "]" with no "[" the word
    before that too (brackets holding spaces: d[ "token" ], d["token" ], d[ "token"]). It is a secret's where it
    _ends_in_secret_name, or where it is an annotation ([A-Za-z_][\w.\[\],|]*, a type: str, Optional[str])
    after such a name and its colon, in its own word (token:str) or the word before (token: str)."""
    text = head
    if not text:
        if not i:
            return False
        i -= 1
        text = words[i]
    if text == "]" and i:
        i -= 1
        text = words[i] + text
    if text[-1:] == "]" and "[" not in text and i:
        i -= 1
        text = words[i] + text
    if _ends_in_secret_name(text):
        return True
    if i and words[i - 1][-1:] == ":" and _is_annotation(text):
        text = words[i - 1] + text
    elif ":" not in text:  # speed: most targets (x = 1)
        return False
    name, _, annotation = text.rpartition(":")
    return _is_annotation(annotation) and _ends_in_secret_name(name)


def _is_annotation(text):
    r"""[A-Za-z_][\w.\[\],|]* (the whole text): a type, as Python code annotates a name with (str, Optional[str])."""
    return _starts_name(text) and _only_word_chars(text[1:], "_.[],|")


def _opened_quote(word, before, start, tokens):
    """The quote (a token of _quote_tokens: ', \\", \\\\\\'...) that word opens from its index start on (it holds
    an odd number of it, and so do its quotes from start on, the words before it an even one: ``before``,
    their parities), else ""; the most escaped first (sh -c "export TOKEN=\\"a b\\""), ' before ".
    ``tokens``: _quote_tokens(word)."""
    for quote in sorted(tokens, key=lambda t: (-len(t), t[-1] != "'")):
        if tokens[quote] % 2 and not before.get(quote) and _quote_tokens(word, start).get(quote, 0) % 2:
            return quote
    return ""


def _quote_tokens(word, start=0):
    r"""{quote: how many}: each ' and " of word from index start on, with the backslashes right before it:
    \\*['"]. So ", \" and \\\" count apart: a quote, one escaped inside a quoted string, one escaped inside a
    quoted string in that."""
    out = {}
    for quote in "'\"":
        i = word.find(quote, start)
        while i >= 0:
            k = i
            while k and word[k - 1] == "\\":
                k -= 1
            token = word[k:i + 1]
            out[token] = out.get(token, 0) + 1
            i = word.find(quote, i + 1)
    return out


def _is_secret_flag(word):
    if word in SHORT_SECRET_FLAGS:
        return True
    name = _flag_name(word)
    return name is not None and looks_secret(name)


def _flag_name(word):
    r"""The name of an option ("--name", "-name") or header ("Name:") word, else None; a header may be
    written into an option or setting (-HAuthorization:, --header=X-Api-Key:, http.extraHeader=Authorization:)
    and end in an auth scheme (Authorization:Bearer: its token follows).

    -{1,2}([A-Za-z_][\w.-]*)|(?:-H)?(?:.*[=,{\[])?[\\'"]*([A-Za-z_][\w-]*)[\\'"]*:(?:AUTH_SCHEMES)?  (the whole
    word; a scheme in any case); a JSON key too ({"api_key": x)
    """
    if word.startswith("-"):
        name = word[2:] if word.startswith("--") else word[1:]
        if _starts_name(name) and _only_word_chars(name[1:], "_.-"):
            return name
        if word.startswith("-H"):
            word = word[2:]
    if not word.endswith(":"):
        if ":" not in word:  # speed: most words
            return None
        head, colon, scheme = word.rpartition(":")
        if scheme.lower() not in AUTH_SCHEMES:
            return None
        word = head + colon
    # in a command string: --header="Authorization: x", -H'X-Key: x', {"api_key": x}
    word = word[max(word.rfind(c) for c in "=,{[") + 1:].lstrip(QUOTES)
    name = word[:-1].rstrip(QUOTES)
    return name if _starts_name(name) and _only_word_chars(name[1:], "_-") else None


def _header_value(text, i):
    r"""Where the value of a header "Name:value" written from text[i] on starts, if Name looks like a secret,
    else -1: ([A-Za-z_][\w-]*):.+ from i (the rest of text)."""
    colon = text.find(":", i)
    if colon < 0 or colon + 1 == len(text):
        return -1
    name = text[i:colon]
    return colon + 1 if _starts_name(name) and _only_word_chars(name[1:], "_-") and looks_secret(name) else -1


def _redact_word(word, seps=":", users=USER_FLAGS, whole=False):
    """word redacted (an argument). ``whole``: a NAME=value word is an assignment even with spaces in it
    (docker run -e 'TOKEN=a b'), not a command line ('TOKEN=x cmd' after sh -c)."""
    spaced = word.split() != [word]  # any whitespace in it (word is not empty)
    name, equals, value = word.partition("=")
    if equals and _is_assignment_name(name) and looks_secret(name) and (word.startswith("-") or not spaced
                                                                         or whole):
        return name + "=" + REDACTED  # the whole value, commas and spaces included
    if equals and name.lstrip(QUOTES) in users:  # --user=alice:password (--user=alice%pw after smbclient)
        at = _find_first(value, 0, seps)
        if at < len(value):
            return name + "=" + value[:at + 1] + REDACTED
    if spaced:  # an argument that is itself a command line, as in sh -c "..."
        return redact_command(word, limit=None, seps=seps, users=users)
    if "@" in word:  # speed: most words hold neither "@" nor "="
        word = _hide_url_passwords(word)
    if "://" in word and ("/bot" in word or "hook" in word.casefold()):  # speed: the URL path rule's only words
        word = _hide_url_paths(word)
    if '"' in word or "'" in word:  # speed: likewise
        if ":" in word or "]=" in word:
            word = _hide_json_values(word)
        if "," in word and ("('" in word or '("' in word or "(\\" in word):  # a quote right after "("
            word = _hide_json_values(word, CALL_PAIR)
    return _hide_assignments(word) if equals else word


def _hide_json_values(word, pair=JSON_PAIR):
    """Every JSON_PAIR (or ``pair``: CALL_PAIR) of word whose key looks like a secret: its value becomes
    <redacted>, left to right (a regular expression, compiled for the first word that may hold one: few do)."""
    pattern = _patterns.get(pair)
    if pattern is None:
        import re

        pattern = _patterns[pair] = re.compile(pair, re.DOTALL)

    def hide(pair):
        if not pair.group(3) or not looks_secret(pair.group(2)):
            return pair.group()
        return pair.group()[:pair.start(3) - pair.start()] + REDACTED

    return pattern.sub(hide, word)


def _is_assignment_name(name):
    r"""-{0,2}[A-Za-z_][\w.-]*  (the whole name before the first "=")"""
    bare = name[2:] if name.startswith("--") else name[1:] if name.startswith("-") else name
    return _starts_name(bare) and _only_word_chars(bare[1:], "_.-")


def _hide_url_passwords(word):
    r"""Every ([A-Za-z][\w+.-]*://[^\s:/@]*):[^\s@/]*@ becomes \1:<redacted>@, left to right; and where the
    scheme ends in http or https (any case), every scheme://([^\s:/@?#]+)@ (a user, no password) becomes
    scheme://<redacted>@.

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
        if found and word[colon:colon + 1] == "@" and colon > sep + 3 and _find_first(
                word, sep + 3, "?#") > colon and word[scheme:sep].lower().endswith(("http", "https")):
            out += [word[copied:sep + 3], REDACTED]  # https://<token>@github.com
            copied, start = colon, colon + 1
            continue
        if not (found and word[colon:colon + 1] == ":" and word[at:at + 1] == "@"):
            start = sep + 1
            continue
        out += [word[copied:colon + 1], REDACTED]
        copied, start = at, at + 1
    out.append(word[copied:])
    return "".join(out)


#: Where a URL ends: ?, #, what closes it in JSON, a list or a quoted string, and a shell operator.
URL_ENDS = "?#,\"'\\|;&<>()`"


def _is_hook(name):
    """Whether a host's label or a path's segment names a webhook: hook, hooks, webhook... (any case)."""
    name = name.casefold()
    return name in ("hook", "hooks") or name.startswith("webhook")


def _hide_url_paths(word):
    r"""The secret a webhook or a bot carries in its URL's path, in every scheme://host/path of word (the scheme:
    the [\w+.-] characters before "://", holding an ASCII letter; host and path end at URL_ENDS): where a
    label of the host (after its last "@") _is_hook (hooks.slack.com, x.webhook.office.com), the whole path
    after its first "/"; else, after the first path segment that _is_hook (/api/webhooks/, /hooks/; not
    /pre-commit-hooks/), the rest of the path where there is some; else in every segment bot<digits>:...
    (Telegram), what follows "bot". Each becomes <redacted> where it is not empty. Word holds no whitespace."""
    out, copied, start = [], 0, 0
    while True:
        sep = word.find("://", start)
        if sep < 0:
            break
        scheme = sep
        while scheme > start and _is_word_char(word[scheme - 1], "_+.-"):
            scheme -= 1
        if not any(_is_ascii_letter(c) for c in word[scheme:sep]):  # not a scheme: a URL may start after it
            start = sep + 3
            continue
        end = _find_first(word, sep + 3, URL_ENDS)
        start = max(end, sep + 3)
        slash = word.find("/", sep + 3, end)
        if slash < 0:
            continue
        host, segments = word[sep + 3:slash].rpartition("@")[2], word[slash + 1:end].split("/")
        hook = next((i for i, part in enumerate(segments) if _is_hook(part)), len(segments))
        after = slash + 1 + sum(len(part) + 1 for part in segments[:hook + 1])  # past the hook segment's "/"
        if any(_is_hook(label) for label in host.split(".")):
            hidden = [(slash + 1, end)]
        elif after < end:
            hidden = [(after, end)]
        else:
            hidden, at = [], slash + 1
            for part in segments:
                digits = part[3:].partition(":")  # bot123456:AAF...
                if part.startswith("bot") and digits[1] and digits[0].isdigit() and digits[0].isascii():
                    hidden.append((at + 3, at + len(part)))
                at += len(part) + 1
        for a, b in hidden:
            if b > a:
                out += [word[copied:a], REDACTED]
                copied = b
    out.append(word[copied:])
    return "".join(out)


def _hide_assignments(word):
    r"""Every ([\w.-]+)\+?=("[^"]*"|'[^']*'|[^\s&;,"']+|['"].*) whose name looks like a secret: the value becomes
    <redacted>, left to right; a value that opens a quote and does not close it goes to the end of word (+=: a
    shell's or Python's append). An assignment whose name does not look like one is not skipped: one may be
    inside its value (--env=HF_TOKEN=abc)."""
    out, copied, start = [], 0, 0
    while True:
        equals = word.find("=", start)
        if equals < 0:
            break
        name, stop = _assigned_name(word, equals, start)  # at least one character, or no assignment
        # speed: the value's end only for a secret's name (x=x=x=...: each value runs to the word's end)
        end = None if name == stop or not looks_secret(word[name:stop]) else _value_end(word, equals + 1)
        if end is None:
            start = equals + 1
            continue
        out += [word[copied:equals + 1], REDACTED]
        copied = start = end
    out.append(word[copied:])
    return "".join(out)


def _assigned_name(word, equals, start=0):
    r"""(name, stop): word[name:stop] is the name assigned to by the "=" at ``equals`` (or its "+=": TOKEN+=x),
    the [\w.-] characters right before it, from ``start`` on; empty where there are none."""
    stop = equals - (equals > start and word[equals - 1] == "+")
    name = stop
    while name > start and _is_word_char(word[name - 1], "_.-"):
        name -= 1
    return name, stop


def _value_end(word, i):
    r"""Where ([\\'"]*['"])(?:.*?\1|.*)|[^\s&;,"']+ starting at word[i] ends, or None when it does not match: a
    quoted value runs to its quote again, a quote being what opens it: ' or ", or quotes escaped inside a
    quoted string, at any depth (\"abc\", \\\"abc\\\", shlex.quote's '\''abc'\''), to the end of word if the
    same does not come again."""
    end = i
    while word[end:end + 1] in ("'", '"', "\\"):
        end += 1
    while end > i and word[end - 1] == "\\":  # a backslash before something else than a quote
        end -= 1
    if end > i:
        close = word.find(word[i:end], end)
        return close + end - i if close >= 0 else len(word)
    end = _find_first(word, i, "&;,\"'")
    return end if end > i else None


def _after_spaces(kept, text):
    """(kept and the whitespace text starts with, the rest of text)."""
    rest = text.lstrip()
    return kept + text[:len(text) - len(rest)], rest


def _command_end(word, depth):
    """Where a shell operator (;&|` or a ")" closing no "(" of the ``depth`` open before word) ends the command in
    word, len(word) if none, and the ( open after it: an operator inside $(...) does not end it."""
    i = 0
    while True:
        at = _find_first(word, i, ";&|)`(")
        if at == len(word):
            return at, depth
        if word[at] == "(":
            depth += 1
        elif depth:
            depth -= word[at] == ")"
        else:
            return at, depth
        i = at + 1


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
    if limit is not None and len(command) > limit - 3 * cut:
        return command[: limit - 3] + "..."
    return command + "..." if cut else command


def _cut(text, most):
    """text's first ``most`` characters; where they end inside a URL (a word holding "://", whose password
    shows once its "@" is cut away), back to the whitespace before it."""
    head = text[:most]
    if len(text) <= most or text[most].isspace() or not head or head[-1].isspace():
        return head
    return _without_cut_url(head)


def _without_cut_url(head):
    """``head``, the start of a longer text cut inside its last word: without that word where it holds "://"
    (a URL cut before its "@" shows its password as a path)."""
    words = head.split()
    if not words or head[-1].isspace() or "://" not in words[-1]:  # cut after whitespace: no word was cut
        return head
    return head[:len(head) - len(words[-1])]
