#!/usr/bin/env python3
"""The real nsupdate.info service (PyPI `nsupdate`, Django) as a dyndns2 provider for the tests.

usage: nsupdate_server.py PORT DIR NAMESERVER_IP TSIG_SECRET_BASE64
Sets up an sqlite database in DIR with user "tester", the domain example.org (its primary at NAMESERVER_IP
port 53, updated with the hmac-sha256 key "example.org." and the given secret) and the host
home.example.org whose update secret is "hostsecret"; then serves the site on 127.0.0.1:PORT (HTTP).
Writes DIR/ready when it listens.
"""
import os
import sys
import types

port, directory, nameserver, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
settings = types.ModuleType("frontdoor_nsupdate_settings")
exec(
    "from nsupdate.settings.base import *\n"
    "DEBUG = False\n"
    "SECRET_KEY = 'frontdoor-tests'\n"
    "ALLOWED_HOSTS = ['*']\n"
    "BASEDOMAIN = 'nsupdate.test'\n"
    f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {os.path.join(directory, 'db.sqlite')!r}}}}}\n"
    "LOGGING = {'version': 1, 'disable_existing_loggers': True}\n",
    settings.__dict__,
)
sys.modules["frontdoor_nsupdate_settings"] = settings
os.environ["DJANGO_SETTINGS_MODULE"] = "frontdoor_nsupdate_settings"

import django  # noqa: E402

django.setup()
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from nsupdate.main.models import Domain, Host  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
user = get_user_model().objects.create_user("tester", "tester@example.org", "password")
domain = Domain.objects.create(
    name="example.org", nameserver_ip=nameserver, nameserver_update_secret=secret,
    nameserver_update_algorithm="HMAC_SHA256", public=True, available=True, created_by=user)
host = Host.objects.create(name="home", domain=domain, created_by=user)
host.generate_secret("hostsecret")
host.save()

from wsgiref.simple_server import WSGIRequestHandler, make_server  # noqa: E402


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", port, get_wsgi_application(), handler_class=QuietHandler)
open(os.path.join(directory, "ready"), "w").close()
server.serve_forever()
