"""Secret redaction of command lines (docs/document.md): what must be hidden, and what must not be."""

import pytest

from collectors.redact import MAX_COMMAND, REDACTED, redact_argv, redact_command

R = REDACTED


@pytest.mark.parametrize("argv, expected", [
    (["mysql", "--password=x", "db"], f"mysql --password={R} db"),
    (["psql", "-p", "s3cret", "-h", "db1"], f"psql -p {R} -h db1"),
    (["app", "--token", "abc", "--verbose"], f"app --token {R} --verbose"),
    (["app", "--api-key=abc", "--client-secret", "xyz"], f"app --api-key={R} --client-secret {R}"),
    (["psql", "postgres://u:pw@h:5432/db"], f"psql postgres://u:{R}@h:5432/db"),
    (["env", "API_KEY=abc", "AWS_SECRET_ACCESS_KEY=def", "python", "x.py"],
     f"env API_KEY={R} AWS_SECRET_ACCESS_KEY={R} python x.py"),
    (["curl", "-H", "Authorization: Bearer xyz", "https://h/api?token=abc&page=2"],
     f"curl -H Authorization: Bearer {R} https://h/api?token={R}&page=2"),
    (["sh", "-c", "mysql --password hunter2 -u root"], f"sh -c mysql --password {R} -u root"),
    (["sh", "-c", "TOKEN=abc ./run.sh --fast"], f"sh -c TOKEN={R} ./run.sh --fast"),
    (["tool", "--db-password=a,b;c d"], f"tool --db-password={R}"),
    (["tool", "--opts=x=1,auth_token=abc"], f"tool --opts=x=1,auth_token={R}"),
    (["mongo", "mongodb+srv://admin:pa:ss@cluster0/x"], f"mongo mongodb+srv://admin:{R}@cluster0/x"),
    # curl's user:password, in its three spellings (it leaked: neither -u nor --user looks like a secret)
    (["curl", "-u", "alice:hunter2", "https://h/"], f"curl -u alice:{R} https://h/"),
    (["curl", "--user", "alice:hun:ter2", "-U", "proxy:pw"], f"curl --user alice:{R} -U proxy:{R}"),
    (["curl", "--user=alice:hunter2"], f"curl --user=alice:{R}"),
    (["sh", "-c", "curl -s -u bob:hunter2 h"], f"sh -c curl -s -u bob:{R} h"),
    # a value written into the short flag: curl -ualice:password, mysql -phunter2 (they leaked)
    (["curl", "-ualice:hunter2", "-Uproxy:pw", "https://h/"], f"curl -ualice:{R} -Uproxy:{R} https://h/"),
    (["mysql", "-uroot", "-phunter2", "db"], f"mysql -uroot -p{R} db"),
    (["/usr/bin/mysqldump", "-h", "db1", "-phunter2", "shop"], f"/usr/bin/mysqldump -h db1 -p{R} shop"),
    (["mariadb-admin", "-pS3cret", "status"], f"mariadb-admin -p{R} status"),
    (["sshpass", "-phunter2", "ssh", "-p2222", "h"], f"sshpass -p{R} ssh -p{R} h"),
    (["env", "MYSQL_HOST=db1", "mysql", "-phunter2"], f"env MYSQL_HOST=db1 mysql -p{R}"),
    (["bash", "-c", "mysql -phunter2 -e 'select 1'"], f"bash -c mysql -p{R} -e 'select 1'"),
    # other tools' password flags, after a word naming the tool
    (["ipmitool", "-I", "lanplus", "-H", "bmc01", "-U", "admin", "-P", "hunter2", "power", "status"],
     f"ipmitool -I lanplus -H bmc01 -U admin -P {R} power status"),
    (["redis-cli", "-h", "cache", "-a", "hunter2", "ping"], f"redis-cli -h cache -a {R} ping"),
    (["/usr/bin/zip", "-P", "hunter2", "out.zip", "f"], f"/usr/bin/zip -P {R} out.zip f"),
    (["7z", "x", "-phunter2", "a.7z"], f"7z x -p{R} a.7z"),
    (["env", "MYSQL_PWD=hunter2", "mysql"], f"env MYSQL_PWD={R} mysql"),  # pwd: a secret word too
    # user flags whose user and password another character joins, after a word naming the tool (they leaked)
    (["smbclient", "//fs/share", "-U", "alice%hunter2"], f"smbclient //fs/share -U alice%{R}"),
    (["/usr/bin/smbclient", "-Ualice%hunter2", "--user=bob%pw"], f"/usr/bin/smbclient -Ualice%{R} --user=bob%{R}"),
    (["net", "ads", "join", "-U", "EXAMPLE\\admin%hunter2"], f"net ads join -U EXAMPLE\\admin%{R}"),
    (["lftp", "-u", "alice,hunter2", "sftp://h"], f"lftp -u alice,{R} sftp://h"),
    (["sh", "-c", "lftp -u alice,hunter2 h"], f"sh -c lftp -u alice,{R} h"),
    (["lftp", "-u", "alice,pw:x"], f"lftp -u alice,{R}"),  # the first of the separators
    (["lftp", "-e", "open -u alice,hunter2 sftp://h; mirror"], f"lftp -e open -u alice,{R} sftp://h; mirror"),
    (["python3", "/usr/bin/samba-tool", "domain", "join", "x", "-U", "Administrator%hunter2"],
     f"python3 /usr/bin/samba-tool domain join x -U Administrator%{R}"),
])
def test_secrets_are_redacted(argv, expected):
    assert redact_argv(argv) == expected


@pytest.mark.parametrize("argv", [
    ["python", "train.py", "--lr=0.1", "--epochs", "3", "--data", "/data/imagenet"],
    ["torchrun", "--nproc_per_node=8", "https://example.org/model.bin"],
    ["app", "--auth-required", "--port", "8080"],  # a secret-looking flag followed by another option
    ["[kworker/0:1]"],
    ["python", "-u", "train.py", "--user", "alice"],  # -u and --user without a password
    ["psql", "-Upostgres", "-dshop"],  # -U written into, without a password
    ["gcc", "-pthread", "-pedantic", "x.c"],  # -p<text> is a password only after mysql, mariadb, sshpass
    ["mkdir", "-pv", "/scratch/mysql"],  # mysql here names no program: it ends the command
    ["make", "-C", "mysql-client/src", "-pj"],  # a folder of that name is not the program either
    ["python", "train.py", "--data", "/data/mysql_export.parquet", "-pretrained"],  # nor a file named after it
    ["exporter", "-url=http://10.0.0.1:9400/metrics", "-upstream=10.0.0.2:8080"],  # -u... options with '='
    ["scp", "-P", "2222", "f", "h:"], ["rsync", "-aP", "src/", "dst/"],  # -P elsewhere: a port, progress
    ["python", "main.py", "-a", "resnet50"],  # -a elsewhere: here the architecture
    ["sort", "-u", "a,b"], ["du", "-u", "50%"],  # , and % join a password only after lftp and Samba's tools
    ["smbclient", "//fs/share", "-U", "alice"],  # a user without a password
])
def test_ordinary_commands_are_kept(argv):
    assert redact_argv(argv) == " ".join(argv)


def test_a_command_string_keeps_its_spacing():
    assert redact_command("python  train.py --token=abc\t-x 1") == f"python  train.py --token={R}\t-x 1"


def test_a_quoted_program_in_a_command_string_is_still_the_program():
    assert redact_command("sh -c 'mysql -phunter2'") == f"sh -c 'mysql -p{R}"


def test_secret_flag_at_the_end_hides_nothing_and_does_not_fail():
    assert redact_argv(["app", "--token"]) == "app --token"


def test_commands_are_capped():
    out = redact_argv(["python"] + [f"--arg{i}=value" for i in range(500)])
    assert len(out) == MAX_COMMAND and out.endswith("...")
    assert redact_argv(["x" * 10], limit=5) == "xx..."


def test_redaction_happens_before_the_cap():
    out = redact_argv(["a" * (MAX_COMMAND - 20), "--password=" + "s" * 100])
    assert "s" * 5 not in out
