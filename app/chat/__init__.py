"""The chat view: messages rendered as Markdown, streaming replies, branch navigation."""
