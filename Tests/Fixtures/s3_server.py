#!/usr/bin/env python3
"""A real S3 implementation on loopback for fbk's tests: moto's server.

Usage: s3_server.py PORT DIR [BUCKET...]

Starts moto's threaded server on 127.0.0.1:PORT, then, before any request
is checked, makes (with boto3, through the server itself):
- each BUCKET versioned, with Object Lock enabled (one named …-plain
  without either);
- the IAM users of deploy/s3: `fbk-client` with deploy/s3/client-policy.json,
  `fbk-operator` with operator-policy.json, `fbk-prune` with prune-policy.json,
  each an access key written to DIR/USER.credentials (mode 0600) in the
  form fbk reads (`aws_access_key_id = …`, `aws_secret_access_key = …`);
- DIR/admin.credentials, a key of an administrator allowed everything
  (for tests that set up or inspect the bucket behind fbk's back).
Then it turns on moto's request authentication (signatures checked, each
user's IAM policy enforced) and writes DIR/ready. Runs until killed.
"""
import json
import os
import signal
import sys
import threading
import time

# A test thread that spawned this may have blocked signals: take SIGTERM again.
signal.pthread_sigmask(signal.SIG_UNBLOCK, range(1, signal.NSIG))
port, out = int(sys.argv[1]), sys.argv[2]
buckets = sys.argv[3:] or ["fbk"]
policies = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "s3")

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = "bootstrap"
os.environ["AWS_SECRET_ACCESS_KEY"] = "bootstrap"

import boto3  # noqa: E402
from moto import settings  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

# moto 5.2.1 checks a signature over the request URL as werkzeug rebuilds
# it, with `/` in query values decoded (`prefix=c1/`); AWS, and libcurl's
# signer with fbk's canonical URLs, sign them encoded (`prefix=c1%2F`), as
# SigV4 says. Canonicalize the query as AWS does before moto checks it.
from urllib.parse import parse_qsl, quote, urlsplit  # noqa: E402
from moto.iam import access_control  # noqa: E402

_create_aws_request = access_control.IAMRequestBase._create_aws_request


def _canonical_query(self):
    parts = urlsplit(self._path)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        self._path = parts.path + "?" + "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    return _create_aws_request(self)


access_control.IAMRequestBase._create_aws_request = _canonical_query

server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
endpoint = f"http://127.0.0.1:{port}"
iam = boto3.client("iam", endpoint_url=endpoint)
s3 = boto3.client("s3", endpoint_url=endpoint)


def write_credentials(name, key):
    path = os.path.join(out, name + ".credentials")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"# {name}\naws_access_key_id = {key['AccessKeyId']}\naws_secret_access_key = {key['SecretAccessKey']}\n")


def user(name, policy_document):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=policy_document)
    write_credentials(name, iam.create_access_key(UserName=name)["AccessKey"])


for bucket in buckets:
    # A bucket named …-plain has neither Object Lock nor versions, as most buckets.
    locked = not bucket.endswith("-plain")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=locked)
    if locked:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

for name, file in [("fbk-client", "client-policy.json"), ("fbk-operator", "operator-policy.json"),
                   ("fbk-prune", "prune-policy.json")]:
    text = open(os.path.join(policies, file)).read()
    # The policies name the bucket `BUCKET`: one statement per bucket here.
    doc = json.loads(text)
    statements = []
    for i, bucket in enumerate(buckets):
        for st in json.loads(json.dumps(doc["Statement"]).replace("BUCKET", bucket).replace("/CLIENT/", "/*/")):
            st["Sid"] += str(i)
            statements.append(st)
    doc["Statement"] = statements
    user(name, json.dumps(doc))
user("admin", json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))

# A test run that ends, however it ends, takes its server with it.
parent = os.getppid()


def watch_parent():
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


threading.Thread(target=watch_parent, daemon=True).start()

# From here on every request must be signed by a known key and allowed by its user's policy.
settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
open(os.path.join(out, "ready"), "w").write(endpoint + "\n")
while True:
    time.sleep(3600)
