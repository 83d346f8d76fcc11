"""Role READMEs are generated from the argument specs and must not drift."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tools import role_docs

ROOT = Path(__file__).resolve().parents[2]


def test_every_role_readme_matches_its_argument_spec():
    proc = subprocess.run([sys.executable, "tools/role_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_render_lists_each_option_with_type_default_and_description(tmp_path):
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(
        textwrap.dedent(
            """\
            argument_specs:
              main:
                short_description: Demo role
                options:
                  demo_size:
                    type: int
                    default: 2
                    description: How many.
                  demo_mode:
                    type: str
                    choices: [a, b]
                    required: true
                    description: [Which, mode.]
            """
        )
    )
    section = role_docs.render(role)
    assert "| `demo_size` | int | `2` | no | How many. |" in section
    assert "| `demo_mode` | str | `` | yes | Which mode. Choices: [a, b]. |" in section
    readme = role / "README.md"
    readme.write_text(f"# demo\n\nintro\n\n{role_docs.BEGIN}\nold\n{role_docs.END}\n\nfooter\n")
    updated = role_docs.update(readme, section)
    assert updated.startswith("# demo\n\nintro\n\n") and updated.endswith("\n\nfooter\n")
    assert "old" not in updated
