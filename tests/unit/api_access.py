"""The callers of the API tests that run the app behind a static token file: a member of
project-a, a member of project-b, and an admin."""

from cloudpulse import conf as cp_conf

TOKENS = {"a": "a" * 24, "b": "b" * 24, "admin": "c" * 24}


def token_file_conf(tmp_path):
    """A loaded cloudpulse.conf whose API reads TOKENS from a token file in tmp_path."""
    tokens = tmp_path / "tokens"
    tokens.write_text("%s project-a member\n%s project-b member\n%s ops admin\n"
                      % (TOKENS["a"], TOKENS["b"], TOKENS["admin"]))
    tokens.chmod(0o600)
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n[api]\nauth_strategy = token_file\n"
                         "token_file = %s\n" % (tmp_path, tokens))
    return cp_conf.load(["--config-file", str(conf_file)], default_config_files=[])


def as_(who):
    """The headers of a request by `who` (a key of TOKENS)."""
    return {"X-Auth-Token": TOKENS[who]}
