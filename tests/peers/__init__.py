"""The loopback peers every test shares: notification receivers (`receivers`), scripted HTTP
servers speaking the providers' real JSON (`scripted`, `providers/`), a Kubernetes API
(`kubernetes`), Prometheus/Alertmanager (`prometheus`), moto for AWS (`aws`, `aws_fixtures`)
and a file keyring for subprocesses (`keyring_file`). Nothing here reaches past loopback."""
