"""`python -m tap_omnitron` runs the tap."""

from tap_omnitron.tap import cli

cli()
