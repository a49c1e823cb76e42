"""The rollout takes only the hosts its plan found changes on (playbooks/powermta.yml, docs/playbooks.md "Rollout").

The plan runs the powermta role in check mode on every host at once. Then:
- with one file edited on site-n2, the rollout's batches hold site-n2 alone. site-n2's file is rendered back, and
  site-n1 and site-n3 are not touched again (their files, their reloads);
- on the next run nothing differs: the rollout matches no host, and the run reports changed=0.
"""

import sys

from helpers import HOSTS, ROOT, playbook, recap

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
from bench_run import checksums, on, reloads  # noqa: E402

POWERMTA = ROOT / "playbooks" / "powermta.yml"
PLAN_PLAY = "PLAY [Plan the PowerMTA rollout"
ROLLOUT_PLAY = "PLAY [Install and configure PowerMTA]"
EDITED = "site-n2"
LOCAL_CONF = "/etc/pmta/conf.d/local.conf"


def rollout_part(output):
    """What the run printed from the rollout play on (the plan before it runs on every host)."""
    assert PLAN_PLAY in output and ROLLOUT_PLAY in output, output[-3000:]
    return output.split(ROLLOUT_PLAY, 1)[1]


def test_only_the_host_with_a_change_is_rolled_out_and_a_no_op_rolls_none():
    before = {host: checksums(host) for host in HOSTS}
    reloads_before = {host: reloads(host) for host in HOSTS}
    on(EDITED, "echo '# edited by hand' >> %s" % LOCAL_CONF)
    assert checksums(EDITED) != before[EDITED]

    result = playbook(POWERMTA)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    rollout = rollout_part(result.stdout)
    assert "[%s]" % EDITED in rollout, output[-4000:]
    for other in set(HOSTS) - {EDITED}:
        assert "[%s]" % other not in rollout, "%s was rolled out with nothing to change:\n%s" % (other, output[-4000:])
        assert checksums(other) == before[other]
        assert reloads(other) == reloads_before[other]
    assert checksums(EDITED) == before[EDITED]  # the rendered file is back
    assert reloads(EDITED) == reloads_before[EDITED] + 1

    again = playbook(POWERMTA)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert rollout_part(again.stdout).lstrip(" *\n").startswith("skipping: no hosts matched"), again.stdout[-4000:]
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout[-4000:]
