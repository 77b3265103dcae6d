"""The loopback peers every test shares: notification receivers (`receivers`), scripted HTTP
servers speaking the providers' real JSON (`scripted`, `providers/`), what checks probe
(`targets`: an HTTP peer, asyncio servers, a TCP port that fails on demand; `tls`: leaf
certificates), a Kubernetes API (`kubernetes`), Prometheus/Alertmanager (`prometheus`), moto
for AWS (`aws`, `aws_fixtures`) and a file keyring for subprocesses (`keyring_file`); `loopback`
has what the threaded ones share (a free port, a promptly stopping server thread). Nothing
here reaches past loopback."""
