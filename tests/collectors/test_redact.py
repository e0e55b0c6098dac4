"""Secret redaction of command lines (docs/document.md): what must be hidden, and what must not be."""

import pytest

from collectors.redact import MAX_COMMAND, MAX_INPUT, REDACTED, redact_argv, redact_command

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
    # wbinfo's own user%password flags (they leaked; its --authenticate= and --krb5auth= look like secrets)
    (["wbinfo", "-a", "alice%hunter2"], f"wbinfo -a alice%{R}"),
    (["wbinfo", "-aalice%hunter2", "-K", "bob%pw", "--pam-logon=carol%pw"],
     f"wbinfo -aalice%{R} -K bob%{R} --pam-logon=carol%{R}"),
    (["winexe", "-U", "DOM/admin%hunter2", "//h", "cmd"], f"winexe -U DOM/admin%{R} //h cmd"),
    # a program named right after a shell operator in its word (they leaked: the word was /x&&mysql)
    (["sh", "-c", "cd /x&&mysql -phunter2 db"], f"sh -c cd /x&&mysql -p{R} db"),
    (["bash", "-c", "true;mysql -phunter2"], f"bash -c true;mysql -p{R}"),
    (["sh", "-c", "(mysql -phunter2)"], f"sh -c (mysql -p{R}"),
    (["sh", "-c", "echo $(mysql -phunter2 -e 'select 1')"], f"sh -c echo $(mysql -p{R} -e 'select 1')"),
    (["sh", "-c", "x|sshpass -phunter2 ssh h"], f"sh -c x|sshpass -p{R} ssh h"),
    (["sh", "-c", "cd /tmp;lftp -u alice,hunter2 h"], f"sh -c cd /tmp;lftp -u alice,{R} h"),
    (["sh", "-c", "cd /s&&smbclient //fs/x -U alice%hunter2"], f"sh -c cd /s&&smbclient //fs/x -U alice%{R}"),
    # flags in quotes inside one argument, and quoted values holding spaces (they leaked)
    (["sh", "-c", "mysql \"-phunter2\" db"], f"sh -c mysql \"-p{R} db"),
    (["sh", "-c", "curl '-ualice:hunter2' h"], f"sh -c curl '-ualice:{R} h"),
    (["sh", "-c", "smbclient //fs/x '-Ualice%hunter2'"], f"sh -c smbclient //fs/x '-Ualice%{R}"),
    (["sh", "-c", "app '--token' abc"], f"sh -c app '--token' {R}"),
    (["sh", "-c", "export TOKEN='abc def' && run"], f"sh -c export TOKEN={R} {R} && run"),
    (["sh", "-c", "app --password=\"a b c\" -v"], f"sh -c app --password={R} {R} {R} -v"),
    (["sh", "-c", "app --token 'abc def' h"], f"sh -c app --token {R} {R} h"),
    (["sh", "-c", "curl -u 'alice:pw with space' h"], f"sh -c curl -u 'alice:{R} {R} {R} h"),
    (["sh", "-c", "mysql -p'a b' db"], f"sh -c mysql -p{R} {R} db"),
    (["sh", "-c", "curl --header 'Authorization: Bearer abc' h"], f"sh -c curl --header 'Authorization: Bearer {R} h"),
    (["sh", "-c", "curl -H \"X-Api-Key: abc\" h"], f"sh -c curl -H \"X-Api-Key: {R} h"),
    # headers written into an option or setting, or with no space after the colon (they leaked)
    (["curl", "-HAuthorization: Bearer abc", "h"], f"curl -HAuthorization: Bearer {R} h"),
    (["curl", "--header=Private-Token: abc", "h"], f"curl --header=Private-Token: {R} h"),
    (["git", "-c", "http.extraHeader=Authorization: Basic abc", "fetch"],
     f"git -c http.extraHeader=Authorization: Basic {R} fetch"),
    (["curl", "-H", "X-Api-Key:abc", "-H", "Authorization:Bearer xyz", "h"],
     f"curl -H X-Api-Key:{R} -H Authorization:Bearer {R} h"),
    (["curl", "-HAuthorization:token", "xyz", "h"], f"curl -HAuthorization:token {R} h"),
    (["curl", "-H", "Cookie: session=abc", "h"], f"curl -H Cookie: {R} h"),  # cookie: a secret word too
    # http(s) URLs whose user is a token, with no password (they leaked)
    (["git", "clone", "https://ghp_abc123@github.com/o/r"], f"git clone https://{R}@github.com/o/r"),
    (["pip", "install", "git+https://tok@gitlab.example/o/r.git@v1"], f"pip install git+https://{R}@gitlab.example/o/r.git@v1"),
    # a secret assignment inside another's value (they leaked)
    (["docker", "run", "--env=HF_TOKEN=abc", "img"], f"docker run --env=HF_TOKEN={R} img"),
    (["sbatch", "--export=HF_TOKEN=abc,ALL", "job.sh"], f"sbatch --export=HF_TOKEN={R},ALL job.sh"),
    (["kubectl", "create", "secret", "generic", "s", "--from-literal=password=pw"],
     f"kubectl create secret generic s --from-literal=password={R}"),
    # a signed URL's signature (Azure SAS, S3, CloudFront) (they leaked)
    (["azcopy", "copy", "https://a.blob.core.windows.net/c?sv=2022-11-02&sr=c&sig=abc%2Bd", "/data"],
     f"azcopy copy https://a.blob.core.windows.net/c?sv=2022-11-02&sr=c&sig={R} /data"),
    (["wget", "https://b.s3.amazonaws.com/x?X-Amz-Date=1&X-Amz-Signature=abc"],
     f"wget https://b.s3.amazonaws.com/x?X-Amz-Date=1&X-Amz-Signature={R}"),
    # more programs' password flags (they leaked)
    (["ldapsearch", "-x", "-D", "cn=admin,dc=x", "-w", "hunter2", "-b", "dc=x"],
     f"ldapsearch -x -D cn=admin,dc=x -w {R} -b dc=x"),
    (["ldapmodify", "-whunter2"], f"ldapmodify -w{R}"),
    (["ldappasswd", "-w", "pw", "-a", "old", "-s", "new", "uid=a"], f"ldappasswd -w {R} -a {R} -s {R} uid=a"),
    (["snmpwalk", "-v3", "-u", "mon", "-A", "authpw", "-X", "privpw", "pdu1"],
     f"snmpwalk -v3 -u mon -A {R} -X {R} pdu1"),
    (["snmpget", "-v2c", "-c", "s3cret", "sw1", "sysUpTime.0"], f"snmpget -v2c -c {R} sw1 sysUpTime.0"),
    (["ipmi-sensors", "-h", "bmc1", "-u", "admin", "-phunter2"], f"ipmi-sensors -h bmc1 -u admin -p{R}"),
    (["ipmitool", "-I", "lanplus", "-k", "gkey", "-P", "pw"], f"ipmitool -I lanplus -k {R} -P {R}"),
    (["racadm", "-r", "idrac1", "-u", "root", "-pcalvin", "getsysinfo"], f"racadm -r idrac1 -u root -p{R} getsysinfo"),
    (["sqlcmd", "-S", "db1", "-U", "sa", "-P", "hunter2"], f"sqlcmd -S db1 -U sa -P {R}"),
    (["mosquitto_sub", "-h", "mq", "-u", "u", "-P", "hunter2", "-t", "x"], f"mosquitto_sub -h mq -u u -P {R} -t x"),
    (["ssh-keygen", "-p", "-P", "old", "-N", "new", "-f", "k"], f"ssh-keygen -p -P {R} -N {R} -f k"),
    (["xfreerdp", "/u:alice", "/p:hunter2", "/v:h"], f"xfreerdp /u:alice /p:{R} /v:h"),
    (["openssl", "enc", "-aes-256-cbc", "-k", "hunter2", "-in", "f"], f"openssl enc -aes-256-cbc -k {R} -in f"),
    # secrets given as plain arguments after a program's word (they leaked)
    (["wandb", "login", "0123abcd"], f"wandb login {R}"),
    (["wandb", "login", "--relogin", "0123abcd"], f"wandb login --relogin {R}"),
    (["htpasswd", "-b", "/etc/htpasswd", "alice", "hunter2"], f"htpasswd -b {R} {R} {R}"),
    (["htpasswd", "-nbB", "alice", "hunter2"], f"htpasswd -nbB {R} {R}"),
    (["aws", "configure", "set", "aws_secret_access_key", "abc"], f"aws configure set {R} {R}"),
    (["vault", "login", "s.abc"], f"vault login {R}"),
    (["rabbitmqctl", "change_password", "alice", "hunter2"], f"rabbitmqctl change_password {R} {R}"),
    (["sh", "-c", "wandb login abc && python train.py"], f"sh -c wandb login {R} && python train.py"),
    (["sh", "-c", "wandb login abc;python train.py"], f"sh -c wandb login {R};python train.py"),
    # oracle review (planted secrets in generated command lines): escaped quotes in a shell string, as ssh's
    # remote command and shlex.quote write them, hid nothing
    (["ssh", "h", 'bash -c "curl -H \\"Authorization: Bearer S\\" https://h/"'],
     f'ssh h bash -c "curl -H \\"Authorization: Bearer {R} https://h/"'),
    (["ssh", "h", "bash -c 'curl -H '\\''X-Api-Key: S'\\'' https://h/'"],
     f"ssh h bash -c 'curl -H '\\''X-Api-Key: {R} https://h/'"),
    (["ssh", "h", 'bash -c "wget -q \\"-ualice:S\\""'], f'ssh h bash -c "wget -q \\"-ualice:{R}'),
    (["ssh", "h", 'bash -c "mysql -u root \\"-pS\\""'], f'ssh h bash -c "mysql -u root \\"-p{R}'),
    (["ssh", "h", "bash -c 'HF_TOKEN='\\''S'\\'' python t.py'"], f"ssh h bash -c 'HF_TOKEN={R} python t.py'"),
    (["ssh", "h", "bash -c 'HF_TOKEN='\\''S T'\\'' python t.py'"], f"ssh h bash -c 'HF_TOKEN={R} {R} python t.py'"),
    (["ssh", "h", 'bash -c "+logger.wandb.api_key=\\"S\\" model=m"'],
     f'ssh h bash -c "+logger.wandb.api_key={R} model=m"'),
    # ... two levels deep
    (["sh", "-c", r'ssh n "ssh m \"PGPASSWORD=\\\"S\\\" psql\""'],
     r'sh -c ssh n "ssh m \"PGPASSWORD=<redacted> psql\""'),
    (["sh", "-c", r"su - u -c 'x '\''--token='\''\'\'''\''S'\''\'\'''\'' y'"],
     r"sh -c su - u -c 'x '\''--token=<redacted> y'"),
    # JSON and Python dicts written into an argument (undocumented before: shown whole)
    (["python", "t.py", "--config", '{"api_key": "S", "model": "m"}'],
     f'python t.py --config {{"api_key": {R} "model": "m"}}'),
    (["x", '--hf_config={"token":"S"}'], f'x --hf_config={{"token":{R}}}'),
    (["x", "--cfg", "{'token': 'S T'}"], f"x --cfg {{'token': {R} {R}"),
    (["curl", "-d", '{"password":"S","user":"u"}', "h"], f'curl -d {{"password":{R},"user":"u"}} h'),
    (["sh", "-c", r'wget -d "{\"password\":\"S\"}"'], f'sh -c wget -d "{{\\"password\\":{R}}}"'),
    (["x", '{"a":{"token":"S"},"auth":{"user":"u","pass":"S"}}'],
     f'x {{"a":{{"token":{R}}},"auth":{{"user":"u","pass":{R}}}}}'),
    # ... two levels deep, a value with a space (diff review: \" inside \\\" was counted as one level up)
    (["sh", "-c", r'ssh h "sh -c \"python x.py --api-key \\\"a b\\\" --lr 0.1\""'],
     r'sh -c ssh h "sh -c \"python x.py --api-key <redacted> <redacted> --lr 0.1\""'),
    (["sh", "-c", r'ssh n "ssh m \"curl -u \\\"alice:pw S2\\\" https://x\""'],
     r'sh -c ssh n "ssh m \"curl -u \\\"alice:<redacted> <redacted> https://x\""'),
    # diff review: an empty string before a secret pair, a quote escaped inside a value, a header written into
    # its flag with spaces, --env= with spaces
    (["x", '{"user":"","password":"S2"}'], f'x {{"user":"","password":{R}}}'),
    (["x", "{'a':'','token':'S2'}"], f"x {{'a':'','token':{R}}}"),
    (["x", r'{"password":"p\"S2"}'], f"x {{\"password\":{R}}}"),
    (["wget", "--header=Cookie: a=1; sid=S2"], f"wget --header=Cookie: {R}"),
    (["curl", "-HCookie: a=1; sid=S2"], f"curl -HCookie: {R}"),
    (["docker", "run", "--env=TOKEN=a S2"], f"docker run --env=TOKEN={R}"),
    # the oracle review's forms the docs did not cover: flag names of JWTs and bearer tokens, Python setting
    # the environment
    (["x", "--jwt=S", "--bearer", "S"], f"x --jwt={R} --bearer {R}"),
    (["python", "-c", "import os; os.environ['HF_TOKEN']='S'; run()"],
     f"python -c import os; os.environ['HF_TOKEN']={R}; run()"),
    (["bash", "-c", r"bash -c 'wget -q '\''--user=u:S'\'''"], r"bash -c bash -c 'wget -q '\''--user=u:<redacted>"),
    # a quoted program in --wrap=
    (["sh", "-c", 'sbatch --wrap="rclone" config create r s3 secret_access_key S'],
     f'sh -c sbatch --wrap="rclone" config create {R} {R} {R} {R}'),
    (["ssh", "h", 'bash -c "export HF_TOKEN=\\"S T\\" && run"'], f'ssh h bash -c "export HF_TOKEN={R} {R} && run"'),
    (["ssh", "h", 'bash -c "DB=\\"postgresql://u:S@db/x\\" python t.py"'],
     f'ssh h bash -c "DB=\\"postgresql://u:{R}@db/x\\" python t.py"'),
    # a program named in an option's value: Slurm's --wrap
    (["sbatch", "--wrap=mysql -u root -pS"], f"sbatch --wrap=mysql -u root -p{R}"),
    (["sbatch", "--wrap=redis-cli -h db -a S ping"], f"sbatch --wrap=redis-cli -h db -a {R} ping"),
    # a header with spaces, whole (leftover: a cookie's second value showed)
    (["curl", "-H", "Cookie: a=1; sid=S", "https://h/"], f"curl -H Cookie: {R} https://h/"),
    (["curl", "-H", "Authorization:Bearer S", "h"], f"curl -H Authorization:Bearer {R} h"),
    (["sh", "-c", "curl --header='Cookie: a=1; sid=S' https://h/ && run"],
     f"sh -c curl --header='Cookie: {R} {R} https://h/ && run"),
    (["sh", "-c", 'curl -H "X-Api-Key: a b" https://h/'], f'sh -c curl -H "X-Api-Key: {R} {R} https://h/'),
    # $(...) among a program's secret arguments does not end them (leftover: KEY showed)
    (["sh", "-c", "wandb login --host=$(cat h) KEY && run"], f"sh -c wandb login --host=$(cat {R} {R} && run"),
    (["sh", "-c", "wandb login $(cat f; echo) KEY; run x"], f"sh -c wandb login {R} {R} {R} {R}; run x"),
    # an assignment with spaces given to -e, --env, env or export is a value, not a command line
    (["docker", "run", "-e", "HF_TOKEN=S T", "img"], f"docker run -e HF_TOKEN={R} img"),
    (["env", "A=1", "HF_TOKEN=S T", "python", "t.py"], f"env A=1 HF_TOKEN={R} python t.py"),
    # a JSON key and its colon apart (leftover: {"token" : "x"} showed x)
    (["curl", "-d", '{ "token" : "S", "n" : 1 }', "h"], f'curl -d {{ "token" : {R} "n" : 1 }} h'),
    (["python", "-c", 'cfg = {"api_key" :"S", "lr" : 0.1}'], f'python -c cfg = {{"api_key" :{R} "lr" : 0.1}}'),
    (["sh", "-c", "curl -d '{\"password\" : \"a b\"}' h"], f"sh -c curl -d '{{\"password\" : {R} {R} h"),
    # its value an object or a list: its own keys are looked at (review: the inner password showed)
    (["curl", "-d", '{"auth" : {"password": "S"}}'], f'curl -d {{"auth" : {{"password": {R}'),
    (["curl", "-d", '{"auth" :{"password": "S"}, "n" : 1}'], f'curl -d {{"auth" :{{"password": {R} "n" : 1}}'),
    (["curl", "-d", '{"keys" : ["a", {"secret" : "S"}]}'], f'curl -d {{"keys" : ["a", {{"secret" : {R}'),
    (["curl", "-d", '{"token" : -1234, "n" : 1}'], f'curl -d {{"token" : {R} "n" : 1}}'),  # a value may start with -
    (["curl", "-d", '{"auth": {"password": "S"}}'], f'curl -d {{"auth": {{"password": {R}'),  # colon glued, too
    (["sh", "-c", 'curl -d {\\"auth\\": {\\"token\\": \\"S\\"}} h'],
     f'sh -c curl -d {{\\"auth\\": {{\\"token\\": {R} h'),
    # a personal access token's name (the oracle's most frequent leak not covered: --hf_pat x)
    (["python", "up.py", "--hf_pat", "S", "--gh-Pat=S"], f"python up.py --hf_pat {R} --gh-Pat={R}"),
    (["docker", "run", "-e", "GITHUB_PAT=S", "img"], f"docker run -e GITHUB_PAT={R} img"),
    (["./config.sh", "--url", "https://github.com/o/r", "--pat", "S"],
     f"./config.sh --url https://github.com/o/r --pat {R}"),
    # a shell operator ends the URL: the rest of the command stays
    (["sh", "-c", "curl https://hooks.slack.com/services/T/B/S|tee x;echo ok"],
     f"sh -c curl https://hooks.slack.com/{R}|tee x;echo ok"),
    # a webhook's or a bot's secret in a URL's path (leftover: the whole URL showed)
    (["curl", "-d", "{}", "https://hooks.slack.com/services/T0/B0/S"], f"curl -d {{}} https://hooks.slack.com/{R}"),
    (["curl", "https://discord.com/api/webhooks/1234/S?wait=true"], f"curl https://discord.com/api/webhooks/{R}?wait=true"),
    (["python", "n.py", "--url=https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/S"],
     f"python n.py --url=https://acme.webhook.office.com/{R}"),
    (["curl", "https://api.telegram.org/bot123456:AAS-x_y/sendMessage"], f"curl https://api.telegram.org/bot{R}/sendMessage"),
    (["curl", "-d", '{"text":"x","hook":"https://hooks.zapier.com/hooks/catch/1/S/"}', "h"],
     f'curl -d {{"text":"x","hook":"https://hooks.zapier.com/{R}"}} h'),
    (["sh", "-c", "curl -X POST https://gitlab.example.org/api/v4/projects/1/hooks/S && echo ok"],
     f"sh -c curl -X POST https://gitlab.example.org/api/v4/projects/1/hooks/{R} && echo ok"),
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
    ["wbinfo", "-u"], ["wbinfo", "-U", "1000"],  # list users, uid to sid: no %
    ["sh", "-c", "cd /scratch/run && make -j8 && ./train;echo done"],  # a shell operator before no program
    ["sh", "-c", "echo it's 'a b' \"c d\" && ls -la"],  # quotes around no secret
    ["sh", "-c", "(cd /x && zip -r out.zip .)"],
    ["git", "clone", "https://github.com/o/r.git"], ["git", "clone", "ssh://git@github.com/o/r"],
    ["pip", "install", "git+https://github.com/o/r@v1.0"],  # @ after the host: a revision
    ["curl", "-H", "Accept: application/json", "-H", "Content-Type:text/plain", "https://h/"],
    ["dockerd", "-H", "unix:///var/run/docker.sock"],
    ["docker", "run", "--env=CUDA_VISIBLE_DEVICES=0", "-e", "NCCL_DEBUG=INFO", "img"],
    ["python", "train.py", "--sigma=0.5", "--signal", "x"],  # sig counts only as a whole name
    ["openssl", "req", "-new", "-nodes", "-kdf", "x"],  # openssl's -k is an option of its own
    ["htpasswd", "-c", "/etc/htpasswd", "alice"],  # without -b the password is asked for
    ["ldapsearch", "-x", "-b", "dc=x", "uid=alice"], ["snmpwalk", "-v2c", "-Cc", "h"],
    ["wandb", "agent", "team/proj/sweep"], ["aws", "s3", "cp", "s3://b/keys.json", "/data/"],
    ["git", "clone", "https://github.com/o/git-hooks"], ["curl", "https://api.github.com/repos/o/r/hooks"],
    ["pre-commit", "run", "--hook-stage", "manual"], ["pip", "install", "--compat", "x"],
    ["pip", "download", "https://github.com/pre-commit/pre-commit-hooks/archive/v4.tar.gz"],
    ["aws", "s3", "cp", "s3://bucket/githooks/a.json", "."],  # hooks inside a name: not a webhook
    ["curl", "https://h/robot/bot/status"],  # no token
    ["curl", "-d", '{ "name" : "S", "lr" : 0.1 }'], ["echo", '"token"', "is", ":", "x"],  # no secret key, no colon next
])
def test_ordinary_commands_are_kept(argv):
    assert redact_argv(argv) == " ".join(argv)


def test_a_command_string_keeps_its_spacing():
    assert redact_command("python  train.py --token=abc\t-x 1") == f"python  train.py --token={R}\t-x 1"


def test_a_quoted_program_in_a_command_string_is_still_the_program():
    assert redact_command("sh -c 'mysql -phunter2'") == f"sh -c 'mysql -p{R}"


def test_a_quoted_value_is_hidden_up_to_its_closing_quote_only():
    """A hidden value that opens a quote hides the words up to the one that closes it (each kind of quote
    counted apart, so a ' inside "..." counts too), and a quote that a hidden value closes hides nothing more."""
    assert redact_command("sh -c \"export TOKEN='a b  c' && run\" x") == f"sh -c \"export TOKEN={R} {R}  {R} && run\" x"
    assert redact_command("sh -c 'mysql -phunter2' && ls -l") == f"sh -c 'mysql -p{R} && ls -l"
    assert redact_command("app --token 'never closed") == f"app --token {R} {R}"


def test_secret_flag_at_the_end_hides_nothing_and_does_not_fail():
    assert redact_argv(["app", "--token"]) == "app --token"


def test_commands_are_capped():
    out = redact_argv(["python"] + [f"--arg{i}=value" for i in range(500)])
    assert len(out) == MAX_COMMAND and out.endswith("...")
    assert redact_argv(["x" * 10], limit=5) == "xx..."


def test_the_8_kib_read_leaves_out_the_word_it_cuts_and_the_cap_holds_with_its_dots():
    """Oracle review: the cut at MAX_INPUT went through a URL's password, which then lost its "@" and showed;
    a cut line came out 3 characters over MAX_COMMAND ("..." added after the cap)."""
    url = "https://alice:S3CR3T_abcdefghijklmnop@github.com/o/r.git"
    filler = "A" * (MAX_INPUT - len("python x.py --credentials=") - len(url) + 24)
    for out in (redact_argv(["python", "x.py", "--credentials=" + filler, url]),
                redact_command(f"python x.py --credentials={filler} {url}")):
        assert "S3CR3T" not in out and out.endswith("...") and out.startswith("python x.py --credentials=<r")
    for n in range(7170, 7190):
        assert len(redact_argv(["x", "--token=" + "A" * n, "k" * 2000])) <= MAX_COMMAND
        assert len(redact_command("x --token=" + "A" * n + " " + "k" * 2000)) <= MAX_COMMAND
    assert redact_argv(["sh", "-c", "echo " * 3000]).endswith("echo echo ...")  # cut between words: kept whole
    # diff review: only a URL's word is left out; a long classpath stays, cut (a Spark job's command line)
    classpath = ":".join(f"/opt/spark/jars/lib{i:04d}-1.2.3.jar" for i in range(400))
    out = redact_argv(["java", "-Xmx8g", "-cp", classpath, "org.apache.spark.deploy.SparkSubmit"])
    assert out.startswith("java -Xmx8g -cp /opt/spark/jars/lib0000") and len(out) == MAX_COMMAND
    assert redact_argv(["x" * (MAX_INPUT + 10)], limit=None) == "x" * MAX_INPUT + "..."
    assert redact_command("y " + "x" * MAX_INPUT, limit=None) == "y " + "x" * (MAX_INPUT - 2) + "..."


def test_redaction_happens_before_the_cap():
    out = redact_argv(["a" * (MAX_COMMAND - 20), "--password=" + "s" * 100])
    assert "s" * 5 not in out


def test_plain_secret_arguments_end_with_their_command():
    """Review: after `wandb login` or `aws ... set`, every later word was hidden up to a shell operator: a
    script's next line, or an option glued to one (`set -x;`), hid the training command the report is for."""
    assert redact_argv(["bash", "-c", "aws s3 sync s3://b /data; set -x; python train.py --epochs 10"]) == (
        "bash -c aws s3 sync s3://b /data; set -x; python train.py --epochs 10")
    assert redact_argv(["bash", "-c", "wandb login KEY\npython train.py --epochs 10"]) == (
        "bash -c wandb login <redacted>\npython train.py --epochs 10")
    assert redact_argv(["wandb", "login", "KEY", "OTHER"]) == "wandb login <redacted> <redacted>"


@pytest.mark.parametrize("command", [
    "curl --header=\"Authorization: token X\" h",
    "wget --header='Authorization: token X' h",
    "git -c http.extraHeader=\"Authorization: Bearer X\" clone r",
    "curl -H\"Authorization: Bearer X\" h",
])
def test_a_header_quoted_after_its_option_in_a_command_string_is_hidden(command):
    """Review: in `sh -c` strings (the shell has not taken the quotes off), a quote after `=` or `-H` hid the
    header's name, and the token went out as written."""
    said = redact_argv(["sh", "-c", command])
    assert "X" not in said.replace("X-", "") and REDACTED in said, said


def test_plain_secret_arguments_go_on_past_a_continued_line_a_here_document_and_argv_operators():
    """Second review of the line rule: a backslash continues the command onto the next line; a here-document's
    lines are its input (`vault login -` reads the token there); in argv, `;&|)` are a secret's characters."""
    assert redact_argv(["bash", "-c", "aws configure set aws_secret_access_key \\\n  SECRET2"]) == (
        "bash -c aws configure set <redacted> <redacted>\n  <redacted>")  # the backslash too: the safe error
    assert "SECRETTOKEN" not in redact_argv(["bash", "-c", "vault login - <<EOF\nhvs.SECRETTOKEN\nEOF"])
    assert redact_argv(["wandb", "login", "--host=https://h/?a=1&b=2", "KEY"]).endswith(" <redacted>")
    assert redact_argv(["aws", "configure", "set", "aws_secret_access_key", "SEC;RET"]) == (
        "aws configure set <redacted> <redacted>")


def test_a_command_line_cut_by_the_8_kib_read_of_proc_leaves_out_the_url_it_cuts(monkeypatch):
    """Review: /proc/<pid>/cmdline is read up to MAX_INPUT bytes, and redact_argv knew a line was cut only
    when the argv it got was longer than that, which a read of that many bytes never is: a URL the read cut
    inside its password showed the start of it (https://alice:hunter2S). A real process, read as the collector
    reads it."""
    import subprocess
    import sys
    import time

    from collectors import _util

    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    code = "import time; time.sleep(60)"
    url = "https://alice:hunter2SECRETpassword@example.com/repo"
    shown = "https://alice:hunter2S"  # what the 8 KiB read keeps of the URL
    head = [sys.executable, "-c", code]
    token_len = MAX_INPUT - len("\0".join(head + ["--token="]) + "\0" + shown)
    argv = head + ["--token=" + "A" * token_len, url]
    assert len("\0".join(argv[:-1])) + 1 + len(shown) == MAX_INPUT
    proc = subprocess.Popen(argv)
    try:
        for _ in range(100):  # until the child has exec'd: its cmdline is the new one
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                if f.read().startswith(sys.executable.encode() + b"\0-c"):
                    break
            time.sleep(0.02)
        (user, command), = _util.owners_and_commands([proc.pid]).values()
    finally:
        proc.kill()
        proc.wait()
    assert "hunter2" not in command and "https" not in command, command
    assert command.endswith("--token=<redacted>...") and command.startswith(sys.executable + " -c import time")
    # a line that ends before the read's limit is whole: no "..."
    assert redact_argv(head + ["--token=x", url], cut=False).endswith("@example.com/repo")
    # cut inside a word that is no URL: kept, cut, with its dots
    assert redact_argv(["java", "-cp", "/opt/lib/a.jar:/opt/li"], cut=True) == "java -cp /opt/lib/a.jar:/opt/li..."


@pytest.mark.parametrize("code, shown", [
    ('os.environ["HF_TOKEN"] = "hf_S"', 'os.environ["HF_TOKEN"] = <redacted>'),
    ("os.environ['HF_TOKEN'] ='hf_S'", "os.environ['HF_TOKEN'] =<redacted>"),
    ("os.environ['HF_TOKEN']= 'hf_S'", "os.environ['HF_TOKEN']= <redacted>"),
    ("login(token = 'hf_S')", "login(token = <redacted>"),
    ("openai.api_key = 'sk-S'", "openai.api_key = <redacted>"),
    ('client = OpenAI(api_key = "sk-S")', "client = OpenAI(api_key = <redacted>"),
    ("os.environ.setdefault('HF_TOKEN', 'hf_S')", "os.environ.setdefault('HF_TOKEN', <redacted>"),
    ('os.putenv("WANDB_API_KEY", "S")', 'os.putenv("WANDB_API_KEY", <redacted>'),
    ("self.password = 'a b S'", "self.password = <redacted> <redacted> <redacted>"),  # the quote, to its close
    ("x = 5; n == token", "x = 5; n == token"),  # not a secret's name; a comparison
    ("if token == 'S': pass", "if token == 'S': pass"),  # "==" compares (redacting it would be the safe error)
])
def test_python_code_that_assigns_a_secret_with_spaces_around_the_equals_sign(code, shown):
    """Review: os.environ['HF_TOKEN']='x' was hidden, but not PEP 8's os.environ['HF_TOKEN'] = 'x', nor
    token = 'x', login(token = 'x'), openai.api_key = 'x', setdefault('HF_TOKEN', 'x')."""
    out = redact_argv(["python3", "-c", f"import os\n{code}\nimport train"])
    assert out == f"python3 -c import os\n{shown}\nimport train"


@pytest.mark.parametrize("argv, shown", [
    (["python3", "-c", 'password="hunter2";token= "x"'], "python3 -c password=<redacted>= <redacted>"),
    (["python3", "-c", 'login(password="hunter2",token= "x")'],
     "python3 -c login(password=<redacted>,token= <redacted>"),
    (["python3", "-c", 'os.environ["PASSWORD"]="hunter2";os.environ.setdefault("HF_TOKEN", "x")'],
     'python3 -c os.environ["PASSWORD"]=<redacted>;os.environ.setdefault("HF_TOKEN", <redacted>'),
    (["curl", "https://alice:hunter2@h/x;token=", "y"], "curl https://alice:<redacted>@h/x;token= <redacted>"),
    (["docker", "run", "-e", "PASSWORD=hunter2;token=", "x"], "docker run -e PASSWORD=<redacted>= <redacted>"),
])
def test_a_word_that_ends_in_a_secret_name_keeps_its_own_secrets_hidden(argv, shown):
    """Review: a word ending in `token=` or `'KEY',` was kept whole for its value in the next word, so secrets
    earlier in that word showed (password="hunter2";token= "x")."""
    out = redact_argv(argv)
    assert "hunter2" not in out and out == shown


def test_a_line_cut_after_whitespace_keeps_its_whole_url_redacted():
    """Review: with the read cut after a space, the last word is whole, but the URL step removed the space and
    the URL's tail, leaving a URL cut before its "@" (https://alice:hunter...)."""
    out = redact_argv(["sh", "-c", "git clone https://alice:hunter2@github.com/o/r\n" + " " * 19], cut=True)
    assert "hunter2" not in out and "https://alice:<redacted>@github.com/o/r" in out and out.endswith("...")


@pytest.mark.parametrize("code, shown", [
    # an annotated assignment: the annotation goes as a header's value would (token:), the value too
    ('token: str = "hf_S"', "token: <redacted> = <redacted>"),
    ('self.api_key: Optional[str] = "sk-S"', "self.api_key: Optional[str] = <redacted>"),
    ('password: dict[str, str] = "S"', "password: <redacted> str] = <redacted>"),
    ('token:str = "hf_S"', "token:str = <redacted>"),
    ("token: str ='hf_S'", "token: <redacted> =<redacted>"),
    ("token: str= 'hf_S'", "token: <redacted> <redacted>"),
    # an augmented assignment
    ('TOKEN += "hf_S"', "TOKEN += <redacted>"),
    ('TOKEN +="hf_S"', "TOKEN +=<redacted>"),
    ('TOKEN+= "hf_S"', "TOKEN+= <redacted>"),
    ('TOKEN+="hf_S"', "TOKEN+=<redacted>"),
    ('os.environ["HF_TOKEN"] += "hf_S"', 'os.environ["HF_TOKEN"] += <redacted>'),
    # a quoted key with spaces inside its brackets
    ('d[ "token" ] = "S"', 'd[ "token" ] = <redacted>'),
    ("os.environ[ 'HF_TOKEN' ]='hf_S'", "os.environ[ 'HF_TOKEN' ]=<redacted>"),
    ('d["token" ] = "S"', 'd["token" ] = <redacted>'),
    ('d[ "token"] = "S"', 'd[ "token"] = <redacted>'),
    ('d[ "token" ]= "S"', 'd[ "token" ]= <redacted>'),
    ('d[ "token"]= "S"', 'd[ "token"]= <redacted>'),
    # a call's quoted secret key with no space after its comma, or with spaces inside its parentheses
    ("os.environ.setdefault('HF_TOKEN','hf_S')", "os.environ.setdefault('HF_TOKEN',<redacted>)"),
    ('os.putenv("WANDB_API_KEY",key)', 'os.putenv("WANDB_API_KEY",<redacted>)'),
    ("os.getenv('HF_TOKEN','hf_S')", "os.getenv('HF_TOKEN',<redacted>)"),
    ('os.environ.get("API_KEY","sk-S")', 'os.environ.get("API_KEY",<redacted>)'),
    ("os.getenv('HF_TOKEN',default='hf_S')", "os.getenv('HF_TOKEN',<redacted>)"),
    ("os.environ.setdefault( 'HF_TOKEN', 'hf_S' )", "os.environ.setdefault( 'HF_TOKEN', <redacted> )"),
    # a secret given as the default of a call assigned to a secret name: the call's words to its close
    ("token = os.getenv('HF', 'hf_S')", "token = <redacted> <redacted>"),
    ('api_key = os.environ.get("OPENAI", "sk-S"); run(lr=0.1)', "api_key = <redacted> <redacted> run(lr=0.1)"),
    ("token= os.getenv('HF', default='hf_S')", "token= <redacted> <redacted>"),
    ("token =os.getenv('HF', 'hf_S') or 'x'", "token =<redacted> <redacted> or 'x'"),
    ("token = os.getenv('HF', 'a S b')", "token = <redacted> <redacted> <redacted> <redacted>"),
    ("token: str = os.getenv('HF', 'hf_S')", "token: <redacted> = <redacted> <redacted>"),
])
def test_python_code_that_assigns_a_secret_in_other_forms(code, shown):
    """Leftover (the docs listed some as not recognised): an annotated assignment (token: str = 'x'), an augmented
    one (TOKEN += 'x'), a quoted key with spaces inside its brackets (d[ "token" ] = 'x'), a call's quoted key
    with no space after its comma (setdefault('HF_TOKEN','x')) and a secret given as the default of a call
    assigned to a secret name (token = os.getenv('X', 'x')) showed the secret."""
    out = redact_argv(["python3", "-c", f"import os\n{code}\nimport train"])
    assert out == f"python3 -c import os\n{shown}\nimport train"
    assert "S" not in out


@pytest.mark.parametrize("code", [
    "n: int = 5",
    'api_version: str = "2024-02-01"',  # version holds no secret word
    "count += 1",
    "x+=1",
    'd[ "name" ] = "v"',
    'd[ "token" ] == "v"',  # a comparison
    "os.environ.setdefault('HOME','/root')",
    'os.environ.get("PATH", "/usr/bin")',
    "home = os.getenv('HOME', '/root'); f(a, b)",
    "fields = ['token','user']",  # a list, not a call's key
    "print(n)",
])
def test_python_code_near_those_forms_is_kept(code):
    """The forms above with names that do not look like secrets, and what only resembles them, stay as written."""
    assert redact_argv(["python3", "-c", f"import os\n{code}\nimport train"]) == (
        f"python3 -c import os\n{code}\nimport train")


def test_an_append_assignment_in_a_shell_hides_its_value():
    """bash's VAR+=value appends: its value is a secret as VAR=value's is."""
    assert redact_argv(["sh", "-c", "HF_TOKEN+=S; run"]) == "sh -c HF_TOKEN+=<redacted>; run"
    assert redact_argv(["env", "X=1", "--opts=a,token+=S"]) == "env X=1 --opts=a,token+=<redacted>"


@pytest.mark.parametrize("script, expected", [
    # a parenthesis inside a string is not the call's: the call closes, the next line stays (it hid to the end)
    ("token = re.compile('(\\\\w+')\nprint(os.environ['HOME'])", "token = <redacted>\nprint(os.environ['HOME'])"),
    # ... nor does one close it early: the argument after it stays hidden (it showed)
    ("token = f(')', 'hf_S value')\nprint(1)", "token = <redacted> <redacted> <redacted>\nprint(1)"),
    # a call over two lines is hidden to its close
    ("token = os.getenv(\n  'X', 'hf_S')\nprint(3)", "token = <redacted>\n  <redacted> <redacted>\nprint(3)"),
    # Python's escaped quote inside a string does not end it (the third review: ')' then closed the call early)
    ("token = f('(', 'it\\'s', ')', 'hf_S')\nprint(4)",
     "token = <redacted> <redacted> <redacted> <redacted>\nprint(4)"),
])
def test_a_hidden_calls_parentheses_are_counted_outside_its_strings(script, expected):
    """Review: the call a secret's value opens was followed by counting every ( and ), strings' too."""
    assert redact_argv(["python", "-c", script]) == f"python -c {expected}"


def test_python_code_in_a_shells_quotes_assigning_a_secret_is_hidden():
    """The third review: the shell's quote glued to the name ("token) kept it from being seen as one."""
    assert redact_argv(["sh", "-c", 'python -c "token = os.getenv(\\"X\\", \\"hf_S\\")\nprint(2)"']) == (
        'sh -c python -c "token = <redacted> <redacted>\nprint(2)"')
    assert redact_argv(["python", "-c", 'print("token = 1")']) == 'python -c print("token = 1")'  # a string


def test_a_secret_assigned_without_spaces_whose_value_opens_a_call_hides_the_call():
    """The third review: token=os.getenv('X', 'x') hid its first word only, the default showing."""
    assert redact_argv(["python", "-c", "token=os.getenv('X', 'hf_S')\nprint(1)"]) == (
        "python -c token=<redacted> <redacted>\nprint(1)")
    assert redact_argv(["python", "-c", "x=f(a, b)\nprint(1)"]) == "python -c x=f(a, b)\nprint(1)"  # no secret
