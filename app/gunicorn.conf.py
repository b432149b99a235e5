# gunicorn settings shared by the image and anyone running the app by hand.
bind = "0.0.0.0:5000"
workers = 2
# A tmpfs heartbeat dir: the container's overlay filesystem can stall workers' heartbeats.
worker_tmp_dir = "/dev/shm"
# Let `docker stop` finish well inside its grace period.
graceful_timeout = 5
accesslog = "-"
