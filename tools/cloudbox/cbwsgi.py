"""Generic WSGI entry point for running an OpenStack API under gunicorn.

gunicorn imports ``cbwsgi:application`` in its worker.  The worker's sys.argv
still holds gunicorn's own arguments, which keystone and cinder would parse as
theirs, so it is reset first.  Environment:

  CLOUDBOX_WSGI_MODULE  module exposing ``application`` (e.g. keystone.wsgi.api)
  CLOUDBOX_WSGI_ARGS    extra argv for the service (e.g. "--config-file x.conf")
  CLOUDBOX_SERVICE      program name (argv[0])
"""
import importlib
import os
import shlex
import sys

sys.argv = [os.environ.get("CLOUDBOX_SERVICE", "cloudbox-wsgi")] + shlex.split(
    os.environ.get("CLOUDBOX_WSGI_ARGS", ""))

application = importlib.import_module(os.environ["CLOUDBOX_WSGI_MODULE"]).application
