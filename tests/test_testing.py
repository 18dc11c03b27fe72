"""requests_twitch.testing imports without pytest; the fake_twitch fixture lives in requests_twitch.testing.plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_importing_the_testing_package_does_not_import_pytest() -> None:
    code = "import sys, requests_twitch.testing; print('pytest' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_the_plugin_module_provides_a_running_fake_twitch(tmp_path: Path) -> None:
    from requests_twitch.testing.plugin import fake_twitch  # noqa: F401  (what the pytest11 entry point names)

    (tmp_path / "test_user.py").write_text(
        "import requests\n\n"
        "def test_it(fake_twitch):\n"
        "    assert requests.get(fake_twitch.id_url + '/validate').status_code == 401\n"
    )
    # The plugin by module name, whatever entry point the installed metadata has.
    args = ["-p", "no:requests_twitch", "-p", "requests_twitch.testing.plugin", "-p", "no:cacheprovider"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", *args, str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
