#!/usr/bin/env python3
"""Writes examples/AWSLogs/...: a small CloudTrail S3-delivery tree telling one
attack story amid normal activity, for `sigil scan --rules rules/ examples/`.

Deterministic (no clock, no randomness beyond a fixed seed, gzip mtime 0):
running it again gives byte-identical files. Run from anywhere:

    python3 examples/make_examples.py

The story (account 111122223333, us-east-1, 2026-11-21, times UTC):
  03:08  password guessing against console user alice, then a sign-in
         without MFA from the same address
  03:14  a leaked CI access key (user ci-deploy, AKIA4EXAMPLEQ7KZ3D2F) is used
         from 203.0.113.77: GetCallerIdentity, then a burst of enumeration,
         many calls denied
  03:20  persistence: CreateUser support-backup, CreateLoginProfile,
         CreateAccessKey, AttachUserPolicy AdministratorAccess
  03:25  evasion: StopLogging, DeleteDetector, DeleteFlowLogs
  03:30  exfiltration: ListBuckets, a public bucket policy, a snapshot shared
         with account 999988887777, 60 GetObject calls
  03:40  destruction: 24 TerminateInstances within 4 minutes
  04:10  containment: AWS attaches AWSCompromisedKeyQuarantineV2; the
         responder writes a deny-all policy
Normal activity all along: an SSO administrator in the console, Auto Scaling
terminating instances, CloudFormation creating roles, AWS Config and Athena
reading, an application role reading its secret.
"""
import gzip
import hashlib
import json
import os
import random
import uuid

ACCT = "111122223333"
REGION = "us-east-1"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "AWSLogs", ACCT, "CloudTrail", REGION, "2026", "11", "21")
rng = random.Random(20261121)

ATTACKER_IP = "203.0.113.77"
CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off"
PACU = "Boto3/1.34.2 md/Botocore#1.34.2 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8"
CONSOLE = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"

STOLEN = {"type": "IAMUser", "principalId": "AIDA4EXAMPLEDEPLOY01",
          "arn": f"arn:aws:iam::{ACCT}:user/ci-deploy", "accountId": ACCT,
          "accessKeyId": "AKIA4EXAMPLEQ7KZ3D2F", "userName": "ci-deploy"}
JANE = {"type": "AssumedRole", "principalId": "AROA4EXAMPLEADMIN001:jane.doe@example.com",
        "arn": f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b/jane.doe@example.com",
        "accountId": ACCT, "accessKeyId": "ASIA4EXAMPLESSOJANE1",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA4EXAMPLEADMIN001",
                                             "arn": f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b",
                                             "accountId": ACCT, "userName": "AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b"},
                           "webIdFederationData": {}, "attributes": {"creationDate": "2026-11-21T02:58:00Z", "mfaAuthenticated": "false"}}}
APP = {"type": "AssumedRole", "principalId": "AROA4EXAMPLEAPPROLE1:i-0aa11bb22cc33dd44",
       "arn": f"arn:aws:sts::{ACCT}:assumed-role/billing-api/i-0aa11bb22cc33dd44", "accountId": ACCT,
       "accessKeyId": "ASIA4EXAMPLEAPPKEY01",
       "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA4EXAMPLEAPPROLE1",
                                            "arn": f"arn:aws:iam::{ACCT}:role/billing-api", "accountId": ACCT, "userName": "billing-api"},
                          "ec2RoleDelivery": "2.0", "attributes": {"creationDate": "2026-11-21T02:00:00Z", "mfaAuthenticated": "false"}}}
RESPONDER = dict(JANE, principalId="AROA4EXAMPLEADMIN001:sam.ir@example.com",
                 arn=f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b/sam.ir@example.com")


def service(name):
    return {"type": "AWSService", "invokedBy": name}


def uid(*parts):
    return str(uuid.UUID(hex=hashlib.sha256(repr(parts).encode()).hexdigest()[:32], version=4))


RECORDS = []


def ev(t, who, src, name, req=None, resp=None, err=None, ip=None, ua=None, ro=False, data=False, extra=None):
    is_svc = who.get("type") == "AWSService"
    r = {"eventVersion": "1.09", "userIdentity": who, "eventTime": t, "eventSource": src,
         "eventName": name, "awsRegion": REGION,
         "sourceIPAddress": who["invokedBy"] if is_svc else (ip or "10.20.1.15"),
         "userAgent": who["invokedBy"] if is_svc else (ua or CLI),
         "requestParameters": req, "responseElements": None if err else resp}
    if err:
        r["errorCode"] = err
        r["errorMessage"] = f"User: {who.get('arn')} is not authorized to perform: {src.split('.')[0]}:{name}"
    if extra:
        r.update(extra)
    n = len(RECORDS)
    r.update({"requestID": uid("req", n, t, name), "eventID": uid("evt", n, t, name), "readOnly": ro,
              "eventType": "AwsApiCall", "managementEvent": not data, "recipientAccountId": ACCT,
              "eventCategory": "Data" if data else "Management"})
    if not is_svc:
        r["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": f"{src.split('.')[0]}.{REGION}.amazonaws.com"}
    RECORDS.append(r)


def at(h, m, s):
    return f"2026-11-21T{h:02d}:{m:02d}:{s:02d}Z"


def instance(i):
    return f"i-0{hashlib.sha256(str(i).encode()).hexdigest()[:16]}"


# ---- normal activity, 03:00-04:30 ----
for k in range(90):
    m = k
    h, mm = 3 + m // 60, m % 60
    kind = k % 6
    if kind == 0:
        ev(at(h, mm, 5), JANE, "ec2.amazonaws.com", "DescribeInstances", {"instancesSet": {}, "filterSet": {}},
           ip="198.51.100.10", ua="console.amazonaws.com", ro=True)
    elif kind == 1:
        ev(at(h, mm, 12), service("config.amazonaws.com"), "ec2.amazonaws.com", "DescribeSecurityGroups",
           {"securityGroupSet": {}}, ro=True)
    elif kind == 2:
        ev(at(h, mm, 20), service("athena.amazonaws.com"), "s3.amazonaws.com", "GetObject",
           {"bucketName": "acme-analytics", "key": f"results/q-{k}.csv"}, ro=True, data=True)
    elif kind == 3:
        ev(at(h, mm, 31), service("autoscaling.amazonaws.com"), "ec2.amazonaws.com", "TerminateInstances",
           {"instancesSet": {"items": [{"instanceId": instance(1000 + k)}]}})
    elif kind == 4:
        ev(at(h, mm, 40), APP, "kms.amazonaws.com", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
           ip="10.20.3.44", ua="aws-sdk-go-v2/1.30.1", ro=True)
    else:
        ev(at(h, mm, 50), service("cloudformation.amazonaws.com"), "iam.amazonaws.com", "CreateRole",
           {"roleName": f"web-stack-LambdaRole-{k:04X}"})
ev(at(3, 5, 0), JANE, "signin.amazonaws.com", "ConsoleLogin", None, {"ConsoleLogin": "Success"},
   ip="198.51.100.10", ua=CONSOLE,
   extra={"additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "Yes"}})

# ---- 03:08 password guessing against alice, then a sign-in without MFA ----
ALICE = {"type": "IAMUser", "principalId": "AIDA4EXAMPLEALICE001", "arn": f"arn:aws:iam::{ACCT}:user/alice",
         "accountId": ACCT, "userName": "alice"}
for i, result in enumerate(["Failure"] * 5 + ["Success"]):
    ev(at(3, 8 + i // 2, i * 25 % 60), ALICE, "signin.amazonaws.com", "ConsoleLogin", None, {"ConsoleLogin": result},
       ip=ATTACKER_IP, ua=CONSOLE,
       extra={"additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home",
                                      "MobileVersion": "No", "MFAUsed": "No"},
              **({"errorMessage": "Failed authentication"} if result == "Failure" else {})})

# ---- 03:14 stolen key: whoami, enumeration, denials ----
ev(at(3, 14, 7), STOLEN, "sts.amazonaws.com", "GetCallerIdentity", ip=ATTACKER_IP, ua=CLI, ro=True)
recon = [("ec2.amazonaws.com", "DescribeInstances"), ("ec2.amazonaws.com", "DescribeSubnets"),
         ("ec2.amazonaws.com", "DescribeVpcs"), ("ec2.amazonaws.com", "DescribeSecurityGroups"),
         ("iam.amazonaws.com", "ListUsers"), ("iam.amazonaws.com", "ListRoles"),
         ("iam.amazonaws.com", "ListAttachedUserPolicies"), ("lambda.amazonaws.com", "ListFunctions20150331"),
         ("rds.amazonaws.com", "DescribeDBInstances"), ("secretsmanager.amazonaws.com", "ListSecrets")]
denied = {"iam.amazonaws.com", "rds.amazonaws.com"}
for i in range(40):
    src, name = recon[i % len(recon)]
    ev(at(3, 15 + i * 4 // 60, i * 4 % 60), STOLEN, src, name, ip=ATTACKER_IP, ua=PACU, ro=True,
       err="AccessDenied" if src in denied else None)

# ---- 03:20 persistence ----
ev(at(3, 20, 11), STOLEN, "iam.amazonaws.com", "CreateUser", {"userName": "support-backup"},
   {"user": {"path": "/", "userName": "support-backup", "userId": "AIDA4EXAMPLEBACKUP01",
             "arn": f"arn:aws:iam::{ACCT}:user/support-backup", "createDate": "Nov 21, 2026 3:20:11 AM"}}, ip=ATTACKER_IP)
ev(at(3, 20, 40), STOLEN, "iam.amazonaws.com", "CreateLoginProfile",
   {"userName": "support-backup", "passwordResetRequired": False}, ip=ATTACKER_IP)
ev(at(3, 21, 2), STOLEN, "iam.amazonaws.com", "CreateAccessKey", {"userName": "support-backup"},
   {"accessKey": {"userName": "support-backup", "accessKeyId": "AKIA4EXAMPLENEWKEY01", "status": "Active"}}, ip=ATTACKER_IP)
ev(at(3, 21, 30), STOLEN, "iam.amazonaws.com", "AttachUserPolicy",
   {"userName": "support-backup", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, ip=ATTACKER_IP)

# ---- 03:25 evasion ----
ev(at(3, 25, 3), STOLEN, "cloudtrail.amazonaws.com", "StopLogging",
   {"name": f"arn:aws:cloudtrail:{REGION}:{ACCT}:trail/org-trail"}, ip=ATTACKER_IP)
ev(at(3, 25, 30), STOLEN, "guardduty.amazonaws.com", "DeleteDetector",
   {"detectorId": "12abc34d567e8fa901bc2d34e56789f0"}, ip=ATTACKER_IP)
ev(at(3, 26, 1), STOLEN, "ec2.amazonaws.com", "DeleteFlowLogs",
   {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-0a1b2c3d4e5f60718", "tag": 1}}}, ip=ATTACKER_IP)

# ---- 03:30 exfiltration ----
ev(at(3, 30, 0), STOLEN, "s3.amazonaws.com", "ListBuckets", {"Host": "s3.amazonaws.com"}, ip=ATTACKER_IP, ro=True)
ev(at(3, 30, 44), STOLEN, "s3.amazonaws.com", "PutBucketPolicy",
   {"bucketName": "acme-prod-data", "bucketPolicy": {"Version": "2012-10-17", "Statement": [
       {"Sid": "x", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-prod-data/*"}]}},
   ip=ATTACKER_IP)
ev(at(3, 31, 20), STOLEN, "ec2.amazonaws.com", "ModifySnapshotAttribute",
   {"snapshotId": "snap-00f54cf7277498559", "attributeType": "CREATE_VOLUME_PERMISSION",
    "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}}, ip=ATTACKER_IP)
for i in range(60):
    key = f"exports/customers/part-{i:04d}.csv.gz"
    ev(at(3, 32 + i * 5 // 60, i * 5 % 60), STOLEN, "s3.amazonaws.com", "GetObject",
       {"bucketName": "acme-prod-data", "key": key}, ip=ATTACKER_IP, ro=True, data=True,
       extra={"resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::acme-prod-data/{key}"}],
              "additionalEventData": {"bytesTransferredOut": rng.randint(2_000_000, 9_000_000)}})

# ---- 03:40 destruction ----
for i in range(24):
    ev(at(3, 40 + i * 10 // 60, i * 10 % 60), STOLEN, "ec2.amazonaws.com", "TerminateInstances",
       {"instancesSet": {"items": [{"instanceId": instance(i)}]}}, ip=ATTACKER_IP)

# ---- 04:10 containment ----
ev(at(4, 10, 2), service("support.amazonaws.com"), "iam.amazonaws.com", "AttachUserPolicy",
   {"userName": "ci-deploy", "policyArn": "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"})
ev(at(4, 12, 30), RESPONDER, "iam.amazonaws.com", "PutUserPolicy",
   {"userName": "support-backup", "policyName": "ir-deny-all",
    "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}'},
   ip="198.51.100.10", ua="console.amazonaws.com")

# ---- write: one file per 5 minutes, as CloudTrail delivers ----
RECORDS.sort(key=lambda r: (r["eventTime"], r["eventID"]))
buckets = {}
for r in RECORDS:
    hh, mm = int(r["eventTime"][11:13]), int(r["eventTime"][14:16])
    buckets.setdefault((hh, mm // 5 * 5), []).append(r)
os.makedirs(ROOT, exist_ok=True)
for old in os.listdir(ROOT):
    os.remove(os.path.join(ROOT, old))
for (hh, mm), recs in sorted(buckets.items()):
    stamp = f"20261121T{hh:02d}{mm:02d}Z"
    tag = hashlib.sha256(stamp.encode()).hexdigest()[:16].upper()
    name = f"{ACCT}_CloudTrail_{REGION}_{stamp}_{tag}.json.gz"
    body = json.dumps({"Records": recs}, separators=(",", ":")).encode()
    with open(os.path.join(ROOT, name), "wb") as fh:
        with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
            gz.write(body)
print(f"{len(RECORDS)} records in {len(buckets)} files under {os.path.relpath(ROOT, HERE)}")
