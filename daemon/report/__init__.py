"""What the state says, as data: the builders behind the CLI's `--json`, the web console's
pages and API, and the MCP tools. Reads the store; never prints, never serves, never writes.
Imports only store, config, ai's pure reports, models and util — never cli, service or web."""
