"""Command-line front end: subcommands that run the core jobs headless."""
