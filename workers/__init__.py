"""Worker process types. Kept empty: the IMAP worker must monkey-patch before other imports."""
