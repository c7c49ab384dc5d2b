"""The settings dialog: a form over common.settings.Settings that refuses bad values."""
