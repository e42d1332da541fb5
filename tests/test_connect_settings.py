"""One object says how this run reaches hosts, from the command line to the
collect worker: nothing the operator chose is dropped on the way."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from runbook.collection.collect import CollectRequest
from runbook.collection.worker import request_from_json, request_to_json
from runbook.connect_settings import ConnectSettings
from runbook.transport.known_hosts import default_known_hosts_files


def test_the_worker_receives_every_choice_the_operator_made(tmp_path: Path) -> None:
    chosen = ConnectSettings(inventories=[tmp_path / "inv.yaml"],
                             known_hosts=[tmp_path / "known"], accept_new=True,
                             connect_timeout=2.5)
    request = CollectRequest(hosts=["role:web"], incident_id="abc", connect=chosen)
    received = request_from_json(request_to_json(request))
    assert received.connect == chosen
    assert received.connect.inventories == (tmp_path / "inv.yaml",)
    options = received.connect.ssh_options()
    assert (options.accept_new, options.connect_timeout) == (True, 2.5)
    assert options.known_hosts_files == [tmp_path / "known"]


def test_no_known_hosts_given_means_openssh_defaults() -> None:
    assert ConnectSettings().ssh_options().known_hosts_files == default_known_hosts_files()
    assert ConnectSettings().ssh_options().accept_new is False


def test_a_jump_name_is_an_inventory_host_read_once_per_use(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  bastion:\n    address: 127.0.0.9\n    user: ops\n")
    settings = ConnectSettings(inventories=[inventory])
    resolve = settings.jump_resolver()
    bastion = resolve("bastion")
    assert (bastion.address, bastion.user) == ("127.0.0.9", "ops")
    # Fixed in the file mid-incident: the next collection sees it, the running one does not.
    inventory.write_text("hosts:\n  bastion:\n    address: 127.0.0.10\n    user: ops\n")
    assert resolve("bastion").address == "127.0.0.9"
    assert settings.jump_resolver()("bastion").address == "127.0.0.10"
    assert resolve("admin@10.1.2.3:2200").port == 2200


def test_every_connecting_command_takes_the_same_options() -> None:
    from runbook import cli

    for words in (["collect"], ["execute"], ["tui"], ["supervisor"]):
        shown = CliRunner().invoke(cli.cli, [*words, "--help"]).output
        for option in ("--accept-new", "--known-hosts", "--connect-timeout", "--inventory"):
            assert option in shown, (words, option)
    assert json.loads(json.dumps(ConnectSettings().as_json()))["accept_new"] is False


def test_no_command_declares_an_option_twice() -> None:
    import click

    from runbook import cli

    def commands(group: click.Group, words: list[str]):  # noqa: ANN202
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from commands(command, [*words, name])
            else:
                yield [*words, name], command

    for words, command in commands(cli.cli, []):
        flags = [flag for param in command.params for flag in getattr(param, "opts", [])]
        assert len(flags) == len(set(flags)), (words, sorted(flags))
