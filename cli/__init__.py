"""Console commands of hwnas: the `hwnas` entry point and its subcommands."""
