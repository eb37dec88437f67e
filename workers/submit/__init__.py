"""The submit worker: sends queued messages over SMTP (`python -m workers.submit`)."""
