#!/usr/bin/python
"""Ansible module of the sysprep role: `sysprep apply`, with check mode and diff mode."""

from __future__ import annotations

DOCUMENTATION = r"""
module: sysprep_apply
short_description: Apply a sysprep profile; check mode is its dry run, diff mode its plan
description:
  - Runs C(sysprep apply PROFILE --json); in check mode C(--dry-run), which changes nothing.
  - changed is sysprep's own answer: a second apply of the same profile changes nothing.
  - In diff mode, each setting the plan changes, before and after; each line a drop-in gains.
options:
  executable:
    description: The sysprep command.
    type: path
    required: true
  global_args:
    description: Arguments before the command (--state-dir DIR, --etc-root DIR).
    type: list
    elements: str
    default: []
  profile:
    description: The profile's name or path.
    type: str
    required: true
  persist:
    description: Also write the drop-ins (--persist).
    type: bool
    default: false
  probe:
    description: Run the profile's probes (else --no-probe).
    type: bool
    default: true
author: sysprep maintainers
"""

RETURN = r"""
plan:
  description: The apply --json document (schemas/apply.schema.json).
  type: dict
  returned: success
"""

import json

from ansible.module_utils.basic import AnsibleModule


def diff(plan):
    """Each change of the plan as a line before and a line after."""
    before, after = [], []
    for entry in plan.get("sysctls", []):
        if entry["action"] != "keep":
            before.append(f"sysctl {entry['key']} = {entry['before']}")
            after.append(f"sysctl {entry['key']} = {entry['after']}")
    for entry in plan.get("rlimits", []):
        if entry["action"] != "keep":
            before.append(f"pid {entry['pid']} {entry['name']} = {entry['before']}")
            after.append(f"pid {entry['pid']} {entry['name']} = {entry['after']}")
    for entry in plan.get("units", []):
        if entry["action"] != "keep":
            before.append(f"{entry['unit']} {entry['name']}={entry['before']}")
            after.append(f"{entry['unit']} {entry['name']}={entry['after']}")
    for entry in plan.get("files", []):
        for line in entry.get("lines", []):
            if line["before"] is not None:
                before.append(f"{entry['path']}: {line['before']}")
            after.append(f"{entry['path']}: {line['after']}")
    return {
        "before_header": "now",
        "after_header": f"sysprep apply {plan['profile']}",
        "before": "".join(f"{line}\n" for line in before),
        "after": "".join(f"{line}\n" for line in after),
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "executable": {"type": "path", "required": True},
            "global_args": {"type": "list", "elements": "str", "default": []},
            "profile": {"type": "str", "required": True},
            "persist": {"type": "bool", "default": False},
            "probe": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    argv = [params["executable"], *params["global_args"], "apply", params["profile"], "--json"]
    argv += ["--persist"] if params["persist"] else []
    argv += [] if params["probe"] else ["--no-probe"]
    argv += ["--dry-run"] if module.check_mode else []
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=err.strip() or f"sysprep apply exited {rc}", rc=rc, stdout=out)
    try:
        plan = json.loads(out)
    except ValueError:
        module.fail_json(msg="sysprep apply --json printed no JSON document", stdout=out)
    result = {"changed": bool(plan["changed"]), "plan": plan}
    if module._diff:
        result["diff"] = diff(plan)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
