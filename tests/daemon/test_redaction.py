"""Prompt redaction: credentials in realistic infrastructure text, stable placeholders,
ordinary ops text left alone, optional extras, user patterns, known values, idempotence."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import logging as wk_logging
from daemon.ai.runner import prepare
from daemon.llm.types import ModelRequest
from daemon.redaction import (
    KNOWN_SECRETS,
    ExtraPattern,
    PromptRedactor,
    is_secret_name,
    mask_credentials,
)

# Obviously fake, correctly shaped. AWS's own documented example pair.
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_SESSION = "FwoGZXIvYXdzEXAMPLEsessionTOKEN0123456789"
ANTHROPIC = "sk-ant-api03-" + "EXAMPLEa1B2c3D4e5" * 5 + "-xyzAA"
OPENAI = "sk-proj-" + "EXAMPLEq9w8E7r6T5" * 3
GEMINI = "AIzaSyEXAMPLE-9tSrke72PouQMnMX-a7eZSW0"
COHERE = "coEXAMPLE" + "0123456789abcdefghijklmnopqrstu"  # 40 characters, no prefix
GITHUB = "ghp_" + "EXAMPLE0a1b2c3d4e5f6" * 2
SLACK_BOT = "xoxb-123456789012-1234567890123-EXAMPLEfGhIjKlMnOpQrStUv"
SLACK_HOOK_PATH = "T00000000/B00000000/EXAMPLEXXXXXXXXXXXXXXXXX"
STRIPE = "sk_live_EXAMPLE0000000000000000fake"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
DB_PASSWORD = "Ex4mple-Orders-Pw"
PEM_BODY = "MIIEowIBAAKCAQEAexampleFAKEKEYdata0123456789abcdefghijklmnopqrs\nEXAMPLEonly+/=="
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
PEM_IN_JSON = PEM.replace("\n", "\\n")  # as a JSON string holds it
AZURE_KEY = "EXAMPLEeby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr=="
SAS_SIG = "EXAMPLEsig0123456789abcdef%2Bghij%3D"
# base64 of "-----BEGIN PRIVATE KEY-----\nMIIE…", as `kubectl get secret -o yaml` shows it
B64_PEM = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2UUlCQURBTkJna3Foa2lHOXcwQkFRRUZBQVND"


@pytest.fixture(autouse=True)
def _forget_known_secrets() -> Iterator[None]:
    yield
    KNOWN_SECRETS.clear()


def placeholders(text: str) -> list[str]:
    return re.findall(r"\[REDACTED:[a-z0-9_]+:\d+\]", text)


# --- a corpus of real-looking infrastructure text -------------------------------------------

CORPUS: dict[str, tuple[str, list[str], list[str]]] = {
    # name: (text, secrets that must be gone, context that must stay)
    "kubectl describe pod": (
        f"""Name:         checkout-api-7d9c8b6f5-x2x9k
Namespace:    prod
Containers:
  checkout-api:
    Image:          ghcr.io/acme/checkout@sha256:3b4d9c1e2f0a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a
    Environment:
      DB_HOST:      orders-postgres
      DB_PASSWORD:  <set to the key 'password' in secret 'orders-db'>  Optional: false
      CACHE_URL:    redis://:{DB_PASSWORD}@session-cache:6379/0
      STRIPE_KEY:   {STRIPE}
Events:
  Warning  BackOff  2m (x14 over 9m)  kubelet  Back-off restarting failed container""",
        [DB_PASSWORD, STRIPE],
        [
            "checkout-api-7d9c8b6f5-x2x9k",
            "sha256:3b4d9c1e2f0a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a",
            "<set to the key 'password' in secret 'orders-db'>",
            "redis://:[REDACTED:password:",
            "@session-cache:6379/0",
            "Back-off restarting failed container",
        ],
    ),
    "env dump": (
        f"""HOME=/home/app
PWD=/srv/checkout
DATABASE_URL=postgres://app:{DB_PASSWORD}@orders-db:5432/orders
DB_PASSWORD={DB_PASSWORD}
ANTHROPIC_API_KEY={ANTHROPIC}
OPENAI_API_KEY={OPENAI}
GEMINI_API_KEY={GEMINI}
COHERE_API_KEY={COHERE}
GITHUB_TOKEN={GITHUB}
SLACK_WEBHOOK_URL=https://hooks.slack.com/services/{SLACK_HOOK_PATH}
LOG_LEVEL=info""",
        [DB_PASSWORD, ANTHROPIC, OPENAI, GEMINI, COHERE, GITHUB, SLACK_HOOK_PATH],
        [
            "PWD=/srv/checkout",
            "postgres://app:[REDACTED:password:",
            "@orders-db:5432/orders",
            "https://hooks.slack.com/services/[REDACTED:slack_webhook:",
            "LOG_LEVEL=info",
        ],
    ),
    "application log": (
        f"""2026-05-09T07:35:25.123Z INFO  GET /api/orders 200 in 41 ms
2026-05-09T07:35:26.004Z WARN  upstream refused token={JWT} (retrying)
2026-05-09T07:35:26.010Z ERROR slack post failed with {SLACK_BOT}: invalid_auth
{{"level":"error","msg":"login failed","user":"bob","password":"{DB_PASSWORD}"}}
2026-05-09T07:35:27.500Z DEBUG headers: x-api-key: {COHERE}""",
        [JWT, SLACK_BOT, DB_PASSWORD, COHERE],
        ["GET /api/orders 200 in 41 ms", "(retrying)", ": invalid_auth", '"user":"bob"'],
    ),
    "docker-compose": (
        f"""services:
  db:
    image: postgres:16.2
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: {DB_PASSWORD}
  worker:
    image: acme/worker:1.4.0
    environment:
      - AWS_ACCESS_KEY_ID={AWS_ID}
      - AWS_SECRET_ACCESS_KEY={AWS_SECRET}
      - API_TOKEN=${{API_TOKEN}}""",
        [DB_PASSWORD, AWS_ID, AWS_SECRET],
        [
            "image: postgres:16.2",
            "POSTGRES_USER: app",
            "acme/worker:1.4.0",
            "API_TOKEN=${API_TOKEN}",
        ],
    ),
    "terraform state": (
        f"""{{"type": "aws_iam_access_key", "name": "deploy", "instances": [{{"attributes": {{
  "id": "{AWS_ID}",
  "secret": "{AWS_SECRET}",
  "ses_smtp_password_v4": "BEXAMPLEsmtpPasswordV4value0123",
  "user": "deploy-bot",
  "arn": "arn:aws:iam::123456789012:user/deploy-bot"}}}}]}},
{{"type": "tls_private_key", "attributes": {{"private_key_pem": "{PEM_IN_JSON}"}}}}""",
        [AWS_ID, AWS_SECRET, "BEXAMPLEsmtpPasswordV4value0123", "MIIEowIBAAKCAQEA"],
        [
            '"user": "deploy-bot"',
            "arn:aws:iam::123456789012:user/deploy-bot",
            "-----BEGIN RSA PRIVATE KEY-----\\n[REDACTED:private_key:",
            "]\\n-----END RSA PRIVATE KEY-----",
        ],
    ),
    "connection strings": (
        f"""jdbc:postgresql://orders-db:5432/orders?user=app&password={DB_PASSWORD}&ssl=true
jdbc:sqlserver://mssql:1433;databaseName=orders;user=app;password=Jdbc-EXAMPLE-1;encrypt=true
jdbc:oracle:thin:scott/TigerEXAMPLE9@oracle:1521/ORCL
Server=tcp:mssql,1433;Initial Catalog=orders;User ID=app;Password=AdoNet-EXAMPLE-2;Encrypt=True;
mysql://root:MysqlEXAMPLE3@mysql:3306/shop
mongodb+srv://admin:MongoEXAMPLE4@cluster0.example.mongodb.net/prod?retryWrites=true
amqp://guest:RabbitEXAMPLE5@rabbitmq:5672/
app:GoDsnEXAMPLE6@tcp(mysql:3306)/shop?parseTime=true""",
        [
            DB_PASSWORD,
            "Jdbc-EXAMPLE-1",
            "TigerEXAMPLE9",
            "AdoNet-EXAMPLE-2",
            "MysqlEXAMPLE3",
            "MongoEXAMPLE4",
            "RabbitEXAMPLE5",
            "GoDsnEXAMPLE6",
        ],
        [
            "jdbc:postgresql://orders-db:5432/orders?user=app&password=[REDACTED:password:",
            "&ssl=true",
            ";encrypt=true",
            "jdbc:oracle:thin:scott/[REDACTED:password:",
            "User ID=app;Password=[REDACTED:password:",
            "@cluster0.example.mongodb.net/prod?retryWrites=true",
            "@tcp(mysql:3306)/shop?parseTime=true",
        ],
    ),
    "curl commands": (
        f"""curl -sS https://api.anthropic.com/v1/messages -H "x-api-key: {ANTHROPIC}"
curl -H 'Authorization: Bearer {OPENAI}' https://api.openai.com/v1/models
curl -H "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l" https://grafana.example.com/api
curl -u admin:CurlEXAMPLE7 https://jenkins:8443/job/x
curl -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/v1/models""",
        [ANTHROPIC, OPENAI, "YWxhZGRpbjpvcGVuc2VzYW1l", "CurlEXAMPLE7"],
        [
            "Authorization: Bearer [REDACTED:bearer_token:",
            "Authorization: Basic [REDACTED:authorization:",
            'Authorization: Bearer $OPENAI_API_KEY"',
            "curl -u admin:[REDACTED:password:",
            "https://api.openai.com/v1/models",
        ],
    ),
    "aws cli files": (
        f"""# ~/.aws/credentials
[default]
aws_access_key_id = {AWS_ID}
aws_secret_access_key = {AWS_SECRET}
aws_session_token = {AWS_SESSION}
# ~/.aws/config
[profile prod]
region = eu-west-1
output = json
$ aws sts assume-role ... → {{"Credentials": {{"AccessKeyId": "{AWS_ID}",
  "SecretAccessKey": "{AWS_SECRET}", "SessionToken": "{AWS_SESSION}"}}}}""",
        [AWS_ID, AWS_SECRET, AWS_SESSION],
        ["[profile prod]", "region = eu-west-1", '"AccessKeyId": "[REDACTED:aws_access_key:'],
    ),
    "pem key block": (
        f"deploy key found in /etc/ssl/private/deploy.pem:\n{PEM}\nowner root:root mode 0600",
        [PEM_BODY, "MIIEowIBAAKCAQEA"],
        [
            "/etc/ssl/private/deploy.pem",
            "-----BEGIN RSA PRIVATE KEY-----\n[REDACTED:private_key:",
            "]\n-----END RSA PRIVATE KEY-----\nowner root:root mode 0600",
        ],
    ),
    "dotenv file": (
        f"""# .env
APP_ENV=production
SECRET_KEY_BASE=EXAMPLE9f2c1e8d7b6a5f4e3d2c1b0a9f8e7d6c
DJANGO_SECRET_KEY="django-insecure EXAMPLE with spaces"
SMTP_PASSWORD='SmtpEXAMPLE8'
STRIPE_SECRET_KEY={STRIPE}
CLIENT_SECRET=OauthClientEXAMPLE0""",
        [
            "EXAMPLE9f2c1e8d7b6a5f4e3d2c1b0a9f8e7d6c",
            "django-insecure EXAMPLE with spaces",
            "SmtpEXAMPLE8",
            STRIPE,
            "OauthClientEXAMPLE0",
        ],
        ["APP_ENV=production", 'DJANGO_SECRET_KEY="[REDACTED:secret:', "SMTP_PASSWORD='[REDACTED"],
    ),
    "gcp service account": (
        """{"type": "service_account", "project_id": "acme-prod",
 "private_key_id": "0123456789abcdef0123456789abcdef01234567",
 "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7EXAMPLE\\n-----END PRIVATE KEY-----\\n",
 "client_email": "deployer@acme-prod.iam.gserviceaccount.com"}""",  # noqa: E501
        ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7EXAMPLE"],
        ['"project_id": "acme-prod"', "deployer@acme-prod.iam.gserviceaccount.com"],
    ),
    "azure": (
        f"""AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net
GET https://acmelogs.blob.core.windows.net/logs/app.log?sv=2022-11-02&ss=b&sp=r&se=2026-06-01T00:00:00Z&sig={SAS_SIG} 403""",  # noqa: E501
        [AZURE_KEY, SAS_SIG],
        [
            "AccountName=acmelogs;AccountKey=[REDACTED:azure_key:",
            "&sp=r&se=2026-06-01T00:00:00Z&sig=",
        ],
    ),
    "kubectl get secret -o yaml": (
        f"""apiVersion: v1
kind: Secret
metadata:
  name: orders-db
type: Opaque
data:
  password: RXg0bXBsZS1PcmRlcnMtUHc=
  tls.key: {B64_PEM}
  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUV2UUlCQURBTkJna3Foa2lHOXcw""",
        ["RXg0bXBsZS1PcmRlcnMtUHc=", B64_PEM],
        ["kind: Secret", "name: orders-db", "tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"],
    ),
}


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_secrets_are_gone_and_context_kept(name: str) -> None:
    text, secrets, context = CORPUS[name]
    out = PromptRedactor().redact(text).text
    for secret in secrets:
        assert secret not in out
    for kept in context:
        assert kept in out


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_placeholders_are_stable_across_calls(name: str) -> None:
    redactor = PromptRedactor()
    text = CORPUS[name][0]
    first = redactor.redact(text).text
    assert redactor.redact(text).text == first
    assert placeholders(first)


def test_same_secret_twice_gets_the_same_placeholder() -> None:
    text, _, _ = CORPUS["env dump"]
    out = PromptRedactor().redact(text).text
    assert "postgres://app:[REDACTED:password:1]@orders-db" in out
    assert "DB_PASSWORD=[REDACTED:password:1]" in out


def test_different_secrets_get_different_placeholders() -> None:
    out = PromptRedactor().redact("password=first-secret-1 password=second-secret-2").text
    assert out == "password=[REDACTED:password:1] password=[REDACTED:password:2]"


def test_only_the_secret_part_is_replaced() -> None:
    redactor = PromptRedactor()
    assert (
        redactor.redact(f"postgres://app:{DB_PASSWORD}@db:5432/orders").text
        == "postgres://app:[REDACTED:password:1]@db:5432/orders"
    )
    assert (
        redactor.redact(f"Authorization: Bearer {OPENAI}").text
        == "Authorization: Bearer [REDACTED:bearer_token:1]"
    )


def test_placeholders_persist_across_calls_and_numbering_is_per_kind() -> None:
    redactor = PromptRedactor()
    redactor.redact(f"password={DB_PASSWORD}")
    out = redactor.redact(f"token=OtherEXAMPLEtoken1 then password={DB_PASSWORD}").text
    assert out == "token=[REDACTED:secret:1] then password=[REDACTED:password:1]"


def test_each_redactor_numbers_its_own_placeholders() -> None:
    PromptRedactor().redact("password=first-secret-1")
    assert PromptRedactor().redact("password=other-secret-2").text == (
        "password=[REDACTED:password:1]"
    )


def test_counts_are_occurrences_by_kind() -> None:
    text = f"{AWS_ID} {AWS_ID} password={DB_PASSWORD} Authorization: Bearer {OPENAI}"
    assert PromptRedactor().redact(text).counts == {
        "aws_access_key": 2,
        "password": 1,
        "bearer_token": 1,
    }


def test_a_secret_seen_under_another_kind_keeps_its_first_placeholder() -> None:
    out = PromptRedactor().redact(f"password={DB_PASSWORD} secret={DB_PASSWORD}")
    assert out.text == "password=[REDACTED:password:1] secret=[REDACTED:password:1]"
    assert out.counts == {"password": 2}


# --- what is deliberately left alone -----------------------------------------------------------

ORDINARY = [
    "2026-05-09T07:35:25.123456Z incident 6f1c2e8a-3b4d-4c5e-9f60-718293a4b5c6 opened",
    "deployed 4f9a1c2e8b7d6a5f3e2d1c0b9a8f7e6d5c4b3a29 (short 4f9a1c2) to prod",
    "pod checkout-api-7d9c8b6f5-x2x9k restarted 3 times; node ip-10-0-1-23",
    # Image digests identify public content, not a credential: they stay, the model needs them.
    "image nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
    "p50=12ms p99=812ms latency 1.25s error rate 0.37% throughput 2.1k qps",
    "upgraded postgres 15.4 → 16.2, chart 1.27.3, app v2.4.0-rc.1",
    "url = secret:slack_webhook and token: secret:gh_token",
    "password: ${DB_PASSWORD} token=$GITHUB_TOKEN",
    'password = var.db_password  token: "{{ vault_token }}"  existingSecret: orders-db',
    "env:\n- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: orders-db\n      key: password",  # noqa: E501
    "DB_PASSWORD:  <set to the key 'password' in secret 'orders-db'>  Optional: false",
    "Data\n====\npassword:  16 bytes\nusername:  3 bytes",
    "input_tokens=1204 output_tokens=151 max_tokens=500",
    "DB_PASSWORD_FILE=/run/secrets/db_password",
    "PWD=/home/app OLDPWD=/home",
    "docker run -u 1000:1000 --rm app; sort -u names.txt",
    "Bearer authentication failed: AuthenticationScheme: Bearer was challenged.",
    '{"token": null, "password": ""}',
    "disk-usage / at 91% (task-runner-3, risk-assessment)",
    "GET http://cache.internal:8080/health returned 503 in 41 ms",
    "mount config.example.toml into /etc/watchkeeper; module daemon.llm.base",
    "already masked: password=*** Authorization: Bearer ***",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_ops_text_is_untouched(text: str) -> None:
    assert PromptRedactor().redact(text).text == text


@pytest.mark.parametrize("text", ORDINARY[:6])
def test_ordinary_ops_text_is_untouched_with_every_extra_on(text: str) -> None:
    redactor = PromptRedactor(emails=True, ips=True, hostnames=True)
    assert redactor.redact(text).text == text


# --- optional extras ------------------------------------------------------------------------


def test_emails_only_when_asked() -> None:
    text = "page ops@example.com and jane.doe+alerts@mail.acme.co.uk"
    assert PromptRedactor().redact(text).text == text
    assert PromptRedactor(emails=True).redact(text).text == (
        "page [REDACTED:email:1] and [REDACTED:email:2]"
    )


def test_ips_only_when_asked_and_loopback_stays() -> None:
    text = "from 10.0.3.17 to 2001:db8::8a2e:370:7334, listen 0.0.0.0:80 127.0.0.1 [::1]:80"
    assert PromptRedactor().redact(text).text == text
    assert PromptRedactor(ips=True).redact(text).text == (
        "from [REDACTED:ip:1] to [REDACTED:ip:2], listen 0.0.0.0:80 127.0.0.1 [::1]:80"
    )


def test_ip_lookalikes_are_not_ips() -> None:
    text = "at 12:34:56, mac aa:bb:cc:dd:ee:ff, netmask 255.255.255.0, version 1.2.3.4.5"
    assert PromptRedactor(ips=True).redact(text).text == text


def test_hostnames_only_when_asked() -> None:
    text = "connect db-1.prod.internal:5432 via checkout.prod.svc.cluster.local"
    assert PromptRedactor().redact(text).text == text
    assert PromptRedactor(hostnames=True).redact(text).text == (
        "connect [REDACTED:hostname:1]:5432 via [REDACTED:hostname:2]"
    )


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3 and 10.4.22, pi 3.14159",
        "config.example.toml values.prod.yaml backup.2026.tar.gz",
        "in daemon.llm.base and os.path.join",
        "cache.internal example.com",  # one dot is not a fully qualified name here
        "apiVersion: networking.k8s.io/v1, label app.kubernetes.io/name",
    ],
)
def test_hostname_lookalikes_are_not_hostnames(text: str) -> None:
    assert PromptRedactor(hostnames=True).redact(text).text == text


# --- user patterns, known values -------------------------------------------------------------


def test_user_pattern_replaces_its_match_under_its_name() -> None:
    redactor = PromptRedactor(extra=[ExtraPattern("customer_id", r"CUST-[0-9]{6}")])
    out = redactor.redact("refund CUST-123456, then CUST-654321, then CUST-123456")
    assert out.text == (
        "refund [REDACTED:customer_id:1], then [REDACTED:customer_id:2], "
        "then [REDACTED:customer_id:1]"
    )
    assert out.counts == {"customer_id": 3}


def test_user_pattern_secret_group_keeps_the_rest() -> None:
    redactor = PromptRedactor(extra=[ExtraPattern("mrn", r"MRN:(?P<secret>\d{6,})")])
    assert redactor.redact("patient MRN:12345678").text == "patient MRN:[REDACTED:mrn:1]"


@pytest.mark.parametrize(
    "extra", [ExtraPattern("broken", "CUST-[0-9"), ExtraPattern("bad name!", "x")]
)
def test_invalid_user_pattern_is_rejected(extra: ExtraPattern) -> None:
    with pytest.raises(ValueError, match="redaction pattern"):
        PromptRedactor(extra=[extra])


def test_known_value_is_replaced_without_a_pattern() -> None:
    redactor = PromptRedactor(known=["plain-cohere-key-123456"])
    assert redactor.redact("using plain-cohere-key-123456 now").text == (
        "using [REDACTED:known_secret:1] now"
    )


def test_secret_registered_for_logging_is_redacted_in_prompts() -> None:
    redactor = PromptRedactor()  # made before the value was resolved
    wk_logging.add_known_secret("resolved-webhook-value-42")
    assert redactor.redact("posting to resolved-webhook-value-42").text == (
        "posting to [REDACTED:known_secret:1]"
    )


def test_known_value_wins_over_a_pattern_matching_part_of_it() -> None:
    redactor = PromptRedactor(known=["word one two three"])
    out = redactor.redact("password=word one two three").text
    assert out == "password=[REDACTED:known_secret:1]"


def test_short_known_values_are_ignored() -> None:
    assert PromptRedactor(known=["admin"]).redact("admin logged in").text == "admin logged in"


# --- idempotence, speed, local passthrough -----------------------------------------------------


def test_redacting_redacted_text_changes_nothing() -> None:
    redactor = PromptRedactor(emails=True, ips=True, hostnames=True, known=["x-known-secret-1"])
    text = "\n".join(corpus[0] for corpus in CORPUS.values()) + "\nops@example.com 10.0.0.1"
    once = redactor.redact(text).text
    again = redactor.redact(once)
    assert again.text == once
    assert again.counts == {}
    assert PromptRedactor(emails=True, ips=True, hostnames=True).redact(once).text == once


def test_a_replacement_that_frees_a_neighbour_is_finished_in_the_same_call() -> None:
    redactor = PromptRedactor(extra=[ExtraPattern("customer_id", r"CUST-[0-9]{6}")])
    once = redactor.redact(f"CUST-123456{JWT}").text
    assert once == "[REDACTED:customer_id:1][REDACTED:jwt:1]"


FRAGMENTS = [
    *("password=", "password: ", "--token ", "Authorization: ", "Bearer ", "postgres://app:"),
    *("@db:5432/x", ":", "@", "/", " ", "\n", '"', "=", ";", "&", "$", "<", "secret:"),
    *(AWS_ID, JWT, DB_PASSWORD, OPENAI, "-----BEGIN RSA PRIVATE KEY-----", "known-value-1"),
    *("10.0.0.1", "ops@example.com", "db.prod.internal", "***", "[REDACTED:password:1]"),
    *("CUST-123456", "REDACTED", "x"),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30))
def test_redaction_is_idempotent_on_any_mix(parts: list[str]) -> None:
    extra = [ExtraPattern("word", "[A-Z]{6,}"), ExtraPattern("customer_id", r"CUST-\d+")]
    redactor = PromptRedactor(extra, emails=True, ips=True, hostnames=True, known=["known-value-1"])
    once = redactor.redact("".join(parts)).text
    assert redactor.redact(once).text == once
    masked = mask_credentials("".join(parts))
    assert mask_credentials(masked) == masked


def test_adversarial_input_finishes() -> None:
    near_misses = [
        "a://b:",
        "eyJ-",
        "sk-",
        "xoxb-",
        "-----BEGIN ",
        "password ",
        "--token ",
        "a.b.",
        "1:2:",
        "x@y.",
        "bearer ",
        "jdbc:oracle:thin:a/",
        "LS0tLS1CRUdJTi",
        "sig=",
    ]
    text = "".join(near_misses) * (200_000 // len("".join(near_misses)))
    redactor = PromptRedactor(emails=True, ips=True, hostnames=True)
    assert len(redactor.redact(text).text) >= len(text) // 2
    for fragment in near_misses:
        redactor.redact(fragment * (200_000 // len(fragment)))


def test_local_models_see_the_text_unchanged() -> None:
    text = f"password={DB_PASSWORD}"
    redactor = PromptRedactor()
    request = ModelRequest.ask(text, system=text)
    assert prepare(request, local=True, redactor=redactor) == request
    cloud = prepare(request, local=False, redactor=redactor)
    assert cloud.messages[0].content == "password=[REDACTED:password:1]"
    assert cloud.system == "password=[REDACTED:password:1]"


# --- the shared patterns, logging-flavoured --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {STRIPE}", "key sk_live_***"),
        (f"AccountKey={AZURE_KEY};", "AccountKey=***;"),
        (f"--password {DB_PASSWORD}", "--password ***"),
        (f"MYSQL_ROOT_PASSWORD: {DB_PASSWORD}", "MYSQL_ROOT_PASSWORD: ***"),
        (f"{PEM}\nafter", "-----BEGIN RSA PRIVATE KEY----- ***\nafter"),
    ],
)
def test_log_masking_uses_the_same_patterns(text: str, expected: str) -> None:
    assert mask_credentials(text) == expected
    assert wk_logging.redact(text) == expected


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("apiKey", True),
        ("Authorization", True),
        ("aws_secret_access_key", True),
        ("max_tokens", False),
        ("token_count", False),
        ("secretKeyRef", False),
        ("password_file", False),
    ],
)
def test_secret_field_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret
