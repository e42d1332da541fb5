"""Inventory: runbook YAML, ssh_config and Ansible sources, and host selection."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runbook.errors import HostSelectionError, InventoryError
from runbook.hosts import parse_target
from runbook.inventory import (
    Inventory,
    load_inventory,
    parse_inventory_file,
    parse_ssh_config,
)
from runbook.inventory.ansible import expand_host_pattern

DATA = Path(__file__).parent / "data" / "inventory"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Own RUNBOOK_HOME and HOME (so `~` expands into tmp_path), and no real
    ~/.ssh/config."""
    home = tmp_path / "user"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "runbook-home"))
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(tmp_path / "no-such-ssh-config"))
    return home


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def names(hosts: list) -> list[str]:
    return [h.name for h in hosts]


def inventory_error(path: Path) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        parse_inventory_file(path)
    return caught.value


# --- runbook inventory YAML -------------------------------------------------------

@pytest.fixture
def shop() -> Inventory:
    return load_inventory([DATA / "runbook.yaml"], ssh_config=None, use_default_file=False)


def test_runbook_yaml_hosts_take_defaults_and_override_them(shop: Inventory,
                                                             isolated: Path) -> None:
    web1 = shop.get("web1")
    assert web1 is not None
    assert (web1.address, web1.port, web1.user, web1.role, web1.project) == (
        "10.0.1.11", 22, "ops", "web", "shop")
    assert web1.identity_file == str(isolated / ".ssh" / "oncall_ed25519")
    assert web1.jump == "bastion"
    assert web1.tags == ("prod", "frontend")
    assert web1.source == "inventory"
    db1 = shop.get("db1")
    assert db1 is not None
    assert (db1.port, db1.user, db1.jump) == (2222, "postgres", "ops@bastion.shop.example:22")
    assert db1.vars == {"pg_version": "16"}


def test_runbook_yaml_host_without_address_uses_its_name(shop: Inventory) -> None:
    laptop = shop.get("laptop")
    assert laptop is not None
    assert (laptop.address, laptop.local, laptop.project) == ("laptop", True, "tools")
    assert shop.get("billing").address == "billing"  # type: ignore[union-attr]


def test_runbook_yaml_groups(shop: Inventory) -> None:
    assert shop.groups == {"frontends": ["web1", "web2"], "databases": ["db1"]}
    assert shop.get("web2").groups == ("frontends",)  # type: ignore[union-attr]
    assert shop.get("bastion").groups == ()  # type: ignore[union-attr]
    assert list(shop.hosts) == ["bastion", "web1", "web2", "db1", "laptop", "billing"]
    assert shop.sources == [str(DATA / "runbook.yaml")]


@pytest.mark.parametrize(("selector", "expected"), [
    ("web2", ["web2"]),
    ("frontends", ["web1", "web2"]),
    ("group:databases", ["db1"]),
    ("role:web", ["web1", "web2"]),
    ("tag:canary", ["web2"]),
    ("tag:prod", ["bastion", "web1", "web2", "db1", "laptop", "billing"]),
    ("project:billing", ["billing"]),
    ("web*", ["web1", "web2"]),
    ("*1", ["web1", "db1"]),
    ("role:b*", ["bastion"]),
    ("all", ["bastion", "web1", "web2", "db1", "laptop", "billing"]),
    ("web1,db1", ["web1", "db1"]),
])
def test_select(shop: Inventory, selector: str, expected: list[str]) -> None:
    assert names(shop.select([selector])) == expected


def test_select_deduplicates_in_order_of_first_appearance(shop: Inventory) -> None:
    assert names(shop.select(["web2", "frontends", "role:db", "web1", "db1"])) == [
        "web2", "web1", "db1"]


def test_first_appearance_wins_for_the_same_name(shop: Inventory) -> None:
    [host] = shop.select(["root@web1", "web1"])
    assert host.user == "root"


def test_select_accepts_a_single_string(shop: Inventory) -> None:
    assert names(shop.select("web1")) == ["web1"]


@pytest.mark.parametrize(("text", "line", "field", "problem"), [
    # a misspelt key, with a did-you-mean
    ("""
     hosts:
       web1:
         role: web
         user: ops
         adress: 10.0.0.1
     """, 5, "hosts.web1.adress", "unknown field 'adress' (did you mean 'address'?)"),
    ("""
     defaults:
       usr: ops
     hosts:
       web1:
     """, 2, "defaults.usr", "did you mean 'user'?"),
    ("""
     hostz:
       web1:
     """, 1, "hostz", "did you mean 'hosts'?"),
    ("""
     hosts:
       web1:
         port: 70000
     """, 3, "hosts.web1.port", "port must be from 1 to 65535, got 70000"),
    ("""
     hosts:
       web1:
         port: ssh
     """, 3, "hosts.web1.port", "valid integer"),
    ("""
     hosts:
       web1:
         tags: frontend
     """, 3, "hosts.web1.tags", "valid list"),
    ("""
     hosts:
       web1:
       "web;1":
         address: 10.0.0.2
     """, 3, "hosts.web;1", "'web;1' is not a valid host name"),
    ("""
     hosts:
       web1:
         address: "10.0.0.1; reboot"
     """, 3, "hosts.web1.address", "is not a valid host name or address"),
    ("""
     hosts:
       bastion:
       web1:
         jump: "ops@@bastion"
     """, 4, "hosts.web1.jump", "neither a host in this inventory nor [user@]host[:port]"),
    ("""
     defaults:
       jump: "bastion:99999"
     hosts:
       web1:
     """, 2, "defaults.jump", "neither a host in this inventory"),
    ("""
     hosts:
       web1:
       web2:
     groups:
       frontends:
         - web1
         - web3
     """, 7, "groups.frontends[1]", "'web3' is not a host in this inventory"),
    ("""
     hosts:
       web1:
     groups:
       web1: [web1]
     """, 4, "groups.web1", "a host has the same name"),
    ("""
     hosts:
       web1:
         role: [web
     """, 4, None, "YAML syntax"),
])
def test_runbook_yaml_errors_name_file_line_and_field(tmp_path: Path, text: str, line: int,
                                                      field: str | None, problem: str) -> None:
    path = write(tmp_path, "inventory.yaml", text)
    error = inventory_error(path)
    assert error.file == str(path)
    assert error.line == line
    assert error.field == field
    assert problem in error.problem
    assert str(error).startswith(f"{path}:{line}: ")


def test_group_member_error_suggests_close_host(tmp_path: Path) -> None:
    path = write(tmp_path, "inventory.yaml", """
        hosts:
          web1:
        groups:
          web: [wbe1]
        """)
    error = inventory_error(path)
    assert error.expected == "one of web1"
    assert error.hint == "expected one of web1"


def test_unrecognised_file_names_the_formats(tmp_path: Path) -> None:
    error = inventory_error(write(tmp_path, "odd.yaml", "servers:\n  - web1\n"))
    assert "not an inventory format runbook understands" in error.problem
    for form in ("runbook inventory YAML", "Ansible YAML", "Ansible INI", "OpenSSH"):
        assert form in (error.expected or "")


def test_missing_inventory_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="file not found"):
        load_inventory([tmp_path / "nope.yaml"], ssh_config=None)


def test_empty_inventory_file_is_an_empty_inventory(tmp_path: Path) -> None:
    inventory = parse_inventory_file(write(tmp_path, "inventory.yaml", "# nothing yet\n"))
    assert inventory.hosts == {}
    with pytest.raises(HostSelectionError, match="inventory is empty"):
        inventory.select(["all"])


# --- OpenSSH client config --------------------------------------------------------

@pytest.fixture
def ssh_inventory() -> Inventory:
    return load_inventory(ssh_config=DATA / "ssh_config", use_default_file=False)


def test_ssh_config_aliases_become_hosts(ssh_inventory: Inventory, isolated: Path) -> None:
    assert list(ssh_inventory.hosts) == ["bastion", "app1", "app2", "db-primary", "cache"]
    bastion = ssh_inventory.get("bastion")
    assert bastion is not None
    assert (bastion.address, bastion.user, bastion.port, bastion.source) == (
        "bastion.example.net", "jumper", 2022, "ssh_config")
    assert bastion.identity_file == str(isolated / ".ssh" / "bastion_key")
    db = ssh_inventory.get("db-primary")
    assert db is not None
    assert (db.address, db.jump, db.user, db.port) == ("10.30.0.5", "bastion", None, 22)


def test_ssh_config_blocks_combine_like_ssh(ssh_inventory: Inventory, isolated: Path) -> None:
    app1, app2 = ssh_inventory.get("app1"), ssh_inventory.get("app2")
    assert app1 is not None and app2 is not None
    assert (app1.address, app1.user) == ("10.20.0.1", "deploy")
    assert (app2.address, app2.user) == ("app2", "deploy")
    # `Host * !bastion` applies to every alias but bastion
    assert app1.identity_file == str(isolated / ".ssh" / "default_key")
    # wildcard patterns are not hosts
    assert "*.prod" not in ssh_inventory.hosts and "*" not in ssh_inventory.hosts


def test_ssh_config_include_is_followed(ssh_inventory: Inventory) -> None:
    cache = ssh_inventory.get("cache")
    assert cache is not None
    assert (cache.address, cache.port) == ("10.40.0.7", 6022)


def test_ad_hoc_host_gets_ssh_config_wildcards(ssh_inventory: Inventory) -> None:
    [host] = ssh_inventory.select(["api3.prod"])
    assert (host.name, host.address, host.user, host.jump, host.source) == (
        "api3.prod", "api3.prod", "produser", "bastion", "ad-hoc")


def test_typed_user_and_port_beat_ssh_config(ssh_inventory: Inventory) -> None:
    [host] = ssh_inventory.select(["root@api3.prod:2200"])
    assert (host.user, host.port, host.jump) == ("root", 2200, "bastion")


def test_ssh_config_alias_that_is_not_a_host_name_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "ssh_config", """
        Host good web$1
            User ops
        """)
    inventory = parse_ssh_config(path)
    assert list(inventory.hosts) == ["good"]
    assert any("web$1" in warning for warning in inventory.warnings)


def test_broken_default_ssh_config_only_warns(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    broken = write(tmp_path, "ssh_config", "Host web1\n    HostName\n")
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(broken))
    inventory = load_inventory([DATA / "runbook.yaml"], use_default_file=False)
    assert "web1" in inventory.hosts and inventory.get("web1").source == "inventory"  # type: ignore[union-attr]
    assert len(inventory.warnings) == 1
    assert f"{broken}:2" in inventory.warnings[0]


def test_broken_explicit_ssh_config_is_an_error(tmp_path: Path) -> None:
    broken = write(tmp_path, "ssh_config", "Host web1\n    HostName\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(ssh_config=broken, use_default_file=False)
    assert (caught.value.file, caught.value.line) == (str(broken), 2)


def test_bad_port_in_explicit_ssh_config_names_the_alias(tmp_path: Path) -> None:
    path = write(tmp_path, "ssh_config", """
        Host ok
            Port 22

        Host web1
            Port 99999
        """)
    with pytest.raises(InventoryError) as caught:
        parse_ssh_config(path)
    assert (caught.value.line, caught.value.field) == (4, "web1")
    assert "99999" in caught.value.problem


def test_include_inside_a_host_block_does_not_swallow_the_rest(tmp_path: Path) -> None:
    write(tmp_path, "conf.d/other.conf", """
        Host other
            HostName 10.0.0.9
        """)
    path = write(tmp_path, "ssh_config", """
        Host app
            Include conf.d/*.conf
            User appuser
        """)
    inventory = parse_ssh_config(path)
    assert inventory.get("app").user == "appuser"  # type: ignore[union-attr]
    other = inventory.get("other")
    assert other is not None
    assert (other.address, other.user) == ("10.0.0.9", None)


def test_config_paramiko_refuses_is_reported_at_its_line(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "ssh_config", """
        Host web1
            User ops
        Match host
            User other
        """)
    with pytest.raises(InventoryError) as caught:
        parse_ssh_config(path)
    assert (caught.value.file, caught.value.line) == (str(path), 3)
    assert "Match" in caught.value.problem
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(path))
    inventory = load_inventory(use_default_file=False)
    assert inventory.hosts == {}
    assert inventory.warnings == [f"ignored {caught.value}"]
    # and ad-hoc hosts still work, without the config
    assert inventory.select(["web1"])[0].user is None


def test_missing_ssh_config(tmp_path: Path) -> None:
    # the default one may be absent ...
    assert load_inventory(use_default_file=False).hosts == {}
    # ... a named one may not
    with pytest.raises(InventoryError, match="file not found"):
        load_inventory(ssh_config=tmp_path / "absent", use_default_file=False)


# --- Ansible INI ------------------------------------------------------------------

@pytest.fixture
def ansible_ini() -> Inventory:
    return parse_inventory_file(DATA / "ansible.ini")


def test_ansible_ini_ranges_and_ungrouped_hosts(ansible_ini: Inventory) -> None:
    assert list(ansible_ini.hosts) == [
        "gateway", "web01", "web02", "web03", "web-canary",
        "db-a.internal", "db-b.internal", "db-c.internal", "localhost"]
    gateway = ansible_ini.get("gateway")
    assert gateway is not None
    assert (gateway.address, gateway.user, gateway.groups) == ("192.0.2.1", "admin", ())


def test_ansible_ini_children_are_flattened(ansible_ini: Inventory) -> None:
    assert ansible_ini.groups["prod"] == [
        "web01", "web02", "web03", "web-canary",
        "db-a.internal", "db-b.internal", "db-c.internal"]
    assert ansible_ini.get("db-b.internal").groups == ("db", "prod")  # type: ignore[union-attr]
    assert "all" not in ansible_ini.groups
    assert names(ansible_ini.select(["prod"])) == ansible_ini.groups["prod"]


def test_ansible_ini_variable_precedence(ansible_ini: Inventory, isolated: Path) -> None:
    web01 = ansible_ini.get("web01")
    canary = ansible_ini.get("web-canary")
    db = ansible_ini.get("db-a.internal")
    assert web01 is not None and canary is not None and db is not None
    # host var beats group var
    assert web01.user == "deploy" and canary.user == "ops"
    assert (canary.address, canary.port, canary.role) == ("198.51.100.9", 2200, "canary")
    # child group (db) beats parent group (prod), which beats all
    assert (db.port, db.role, db.project) == (5022, "db", "shop")
    assert web01.role == "app"
    assert ansible_ini.get("gateway").project == "everything"  # type: ignore[union-attr]
    assert db.identity_file == str(isolated / ".ssh" / "ansible_key")


def test_ansible_ini_connection_local(ansible_ini: Inventory) -> None:
    localhost = ansible_ini.get("localhost")
    assert localhost is not None
    assert localhost.local and localhost.source == "ansible"
    assert ansible_ini.select(["localhost"]) == [localhost]


@pytest.mark.parametrize(("text", "line", "field", "problem"), [
    ("""
     [web]
     web1

     [web:vars]
     ansible_user=ops
     just words here
     """, 6, "[web:vars]", "expected name=value, got 'just words here'"),
    ("""
     [web]
     web1 ansible_port=ssh
     """, 2, "web1.ansible_port", "port must be a number from 1 to 65535, got 'ssh'"),
    ("""
     [web]
     web1

     [web:vars]
     ansible_port=0
     """, 5, "web:vars.ansible_port", "got '0'"),
    ("""
     [web]
     web1 ansible_user
     """, 2, "web1", "expected key=value after the host name, got 'ansible_user'"),
    ("""
     [web]
     web[03:01]
     """, 2, "[web]", "start is after its end"),
    ("""
     [web]
     web[1-3]
     """, 2, "[web]", "should be [start:end]"),
    ("""
     ok

     [web:hostz]
     web1
     """, 3, "[web:hostz]", "unknown section type ':hostz'"),
    ("""
     [web]
     web1 ansible_host="10.0.0.1 && reboot"
     """, 2, "web1.ansible_host", "not a valid host name or address"),
    ("""
     [a:children]
     b

     [b:children]
     a
     """, 1, "a:children", "groups contain each other: a -> b -> a"),
])
def test_ansible_ini_errors(tmp_path: Path, text: str, line: int, field: str,
                            problem: str) -> None:
    path = write(tmp_path, "hosts.ini", text)
    error = inventory_error(path)
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert problem in error.problem


@pytest.mark.parametrize(("pattern", "expected"), [
    ("web[01:03]", ["web01", "web02", "web03"]),
    ("web[8:10]", ["web8", "web9", "web10"]),
    ("web[08:10]", ["web08", "web09", "web10"]),
    ("db-[a:c]", ["db-a", "db-b", "db-c"]),
    ("n[0:6:3].dc[1:2]", ["n0.dc1", "n0.dc2", "n3.dc1", "n3.dc2", "n6.dc1", "n6.dc2"]),
    ("plain", ["plain"]),
])
def test_host_ranges(pattern: str, expected: list[str]) -> None:
    assert expand_host_pattern(pattern) == expected


def test_ansible_ini_detected_without_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts", """
        web1 ansible_host=10.0.0.1
        web2 ansible_host=10.0.0.2 ansible_port=2222
        """)
    inventory = parse_inventory_file(path)
    assert [(h.name, h.address, h.port) for h in inventory.hosts.values()] == [
        ("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 2222)]


def test_ssh_config_given_as_an_inventory_file_is_recognised() -> None:
    inventory = parse_inventory_file(DATA / "ssh_config")
    assert inventory.get("db-primary").jump == "bastion"  # type: ignore[union-attr]


def test_ansible_ini_host_port_suffix(tmp_path: Path) -> None:
    inventory = parse_inventory_file(write(tmp_path, "hosts.cfg", "[web]\nweb1:2201\n"))
    assert inventory.get("web1").port == 2201  # type: ignore[union-attr]


# --- Ansible YAML -----------------------------------------------------------------

@pytest.fixture
def ansible_yaml() -> Inventory:
    return parse_inventory_file(DATA / "ansible.yaml")


def test_ansible_yaml_nested_children(ansible_yaml: Inventory) -> None:
    assert ansible_yaml.groups == {
        "prod": ["web1", "web2", "web-canary", "db1.internal"],
        "web": ["web1", "web2", "web-canary"],
        "db": ["db1.internal"],
        "staging": ["web1", "stage-db"],
    }
    assert ansible_yaml.get("web1").groups == ("prod", "web", "staging")  # type: ignore[union-attr]


def test_ansible_yaml_variables(ansible_yaml: Inventory) -> None:
    web1, canary, db1 = (ansible_yaml.get(n) for n in ("web1", "web-canary", "db1.internal"))
    assert web1 is not None and canary is not None and db1 is not None
    assert (web1.user, web1.role, web1.project, web1.tags) == ("ops", "web", "shop", ("frontend",))
    assert (canary.port, canary.role) == (2200, "canary")
    assert (db1.user, db1.role) == ("postgres", "app")
    assert ansible_yaml.get("jumpbox").address == "203.0.113.5"  # type: ignore[union-attr]
    assert ansible_yaml.get("stage-db").local  # type: ignore[union-attr]
    assert names(ansible_yaml.select(["role:web"])) == ["web1", "web2"]


def test_ansible_yaml_without_all(tmp_path: Path) -> None:
    path = write(tmp_path, "inventory.yml", """
        web:
          hosts:
            web1:
              ansible_host: 10.0.0.1
        db:
          hosts:
            db1:
        """)
    inventory = parse_inventory_file(path)
    assert inventory.groups == {"web": ["web1"], "db": ["db1"]}
    assert inventory.get("web1").address == "10.0.0.1"  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "line", "field", "problem"), [
    ("""
     all:
       children:
         web:
           hots:
             web1:
     """, 4, "all.children.web.hots", "unknown field 'hots' (did you mean 'hosts'?)"),
    ("""
     all:
       children:
         web:
           hosts:
             web1:
               ansible_port: 123456
     """, 6, "all.children.web.hosts.web1.ansible_port", "got '123456'"),
    ("""
     all:
       vars:
         ansible_port: x
       hosts:
         web1:
     """, 3, "all.vars.ansible_port", "got 'x'"),
    ("""
     all:
       children:
         web: [web1, web2]
     """, 3, "all.children.web", "a group must be a mapping"),
])
def test_ansible_yaml_errors(tmp_path: Path, text: str, line: int, field: str,
                             problem: str) -> None:
    path = write(tmp_path, "inventory.yaml", text)
    error = inventory_error(path)
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert problem in error.problem


# --- precedence between sources ---------------------------------------------------

def test_inventory_file_overrides_ssh_config_alias(tmp_path: Path) -> None:
    path = write(tmp_path, "inventory.yaml", """
        hosts:
          bastion:
            address: 192.0.2.10
            role: bastion
        """)
    inventory = load_inventory([path], ssh_config=DATA / "ssh_config", use_default_file=False)
    bastion = inventory.get("bastion")
    assert bastion is not None
    assert (bastion.address, bastion.port, bastion.user, bastion.source) == (
        "192.0.2.10", 22, None, "inventory")
    assert inventory.get("cache").source == "ssh_config"  # type: ignore[union-attr]
    assert inventory.sources == [str(DATA / "ssh_config"), str(path)]


def test_later_inventory_file_wins_and_groups_add_up(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", """
        hosts:
          web1: {address: 10.0.0.1}
        groups:
          web: [web1]
        """)
    second = write(tmp_path, "b.ini", """
        [web]
        web1 ansible_host=10.9.9.9
        web2
        """)
    inventory = load_inventory([first, second], ssh_config=None)
    assert inventory.get("web1").address == "10.9.9.9"  # type: ignore[union-attr]
    assert inventory.groups["web"] == ["web1", "web2"]
    assert inventory.get("web2").groups == ("web",)  # type: ignore[union-attr]


def test_default_inventory_file_is_read_and_overridden(tmp_path: Path) -> None:
    write(tmp_path, "runbook-home/config/inventory.yaml", """
        hosts:
          web1: {address: 10.0.0.1, role: web}
          db1: {address: 10.0.0.2}
        """)
    explicit = write(tmp_path, "override.yaml", "hosts:\n  web1: {address: 10.1.1.1}\n")
    inventory = load_inventory([explicit], ssh_config=None)
    assert inventory.get("web1").address == "10.1.1.1"  # type: ignore[union-attr]
    assert inventory.get("db1") is not None
    assert "db1" not in load_inventory(ssh_config=None, use_default_file=False).hosts


# --- ad-hoc hosts and refused selectors -------------------------------------------

def test_ad_hoc_user_host_port(shop: Inventory) -> None:
    [host] = shop.select(["alice@203.0.113.9:2222"])
    assert (host.name, host.address, host.user, host.port, host.local, host.source) == (
        "203.0.113.9", "203.0.113.9", "alice", 2222, False, "ad-hoc")


def test_ad_hoc_ipv6_in_brackets(shop: Inventory) -> None:
    [host] = shop.select(["[::1]:2222"])
    assert (host.address, host.port, host.local) == ("::1", 2222, False)
    [root] = shop.select(["root@[2001:db8::7]"])
    assert (root.address, root.user, root.port) == ("2001:db8::7", "root", 22)


@pytest.mark.parametrize("selector", ["localhost", "127.0.0.1", "::1"])
def test_local_names_are_local_unless_declared(shop: Inventory, selector: str) -> None:
    [host] = shop.select([selector])
    assert (host.name, host.local, host.source) == (selector, True, "local")


def test_local_name_with_user_or_port_is_ssh(shop: Inventory) -> None:
    [host] = shop.select(["runner@localhost:2222"])
    assert (host.local, host.user, host.port) == (False, "runner", 2222)


def test_user_at_inventory_host_keeps_the_inventory_entry(shop: Inventory) -> None:
    [host] = shop.select(["root@web1"])
    assert (host.name, host.address, host.user, host.jump, host.source) == (
        "web1", "10.0.1.11", "root", "bastion", "inventory")


def test_ad_hoc_can_be_refused(shop: Inventory) -> None:
    with pytest.raises(HostSelectionError, match="no host matches 'web9'"):
        shop.select(["web9"], allow_ad_hoc=False)
    assert names(shop.select(["root@web1"], allow_ad_hoc=False)) == ["web1"]


@pytest.mark.parametrize("selector", [
    "web1;rm -rf /", "$(reboot)", "web 1", "`id`", "-oProxyCommand=touch x", "web1|nc",
    "a'b", 'a"b', "web1\nweb2", "../etc/passwd", "web1&", "{a,b}", "~root",
])
def test_metacharacters_are_refused(shop: Inventory, selector: str) -> None:
    with pytest.raises(HostSelectionError, match="refusing host selector"):
        shop.select([selector])


@pytest.mark.parametrize("selector", ["-oProxyCommand", "web1:0", "web1:http", "bad@@host",
                                      "[web1]:22", "a:b:c", ""])
def test_not_a_host_at_all(shop: Inventory, selector: str) -> None:
    with pytest.raises(HostSelectionError):
        shop.select([selector])


@pytest.mark.parametrize(("selector", "suggestion"), [
    ("role:dbb", "role:db"),
    ("group:frontend", "group:frontends"),
    ("wbe*", "web1"),
    ("tag:canry", "tag:canary"),
])
def test_no_match_suggests_close_names(shop: Inventory, selector: str, suggestion: str) -> None:
    with pytest.raises(HostSelectionError) as caught:
        shop.select(["web1", selector])
    assert caught.value.message == f"no host matches {selector!r}"
    assert suggestion in (caught.value.hint or "")


def test_no_match_without_close_name_explains_selectors(shop: Inventory) -> None:
    with pytest.raises(HostSelectionError) as caught:
        shop.select(["role:zzzzzz"])
    assert "role:NAME" in (caught.value.hint or "")


@pytest.mark.parametrize(("text", "expected"), [
    ("web1", (None, "web1", None)),
    ("ops@web1:2200", ("ops", "web1", 2200)),
    ("[fe80::1]:22", (None, "fe80::1", 22)),
    ("2001:db8::1", (None, "2001:db8::1", None)),
    ("web1:70000", None),
    ("-web1", None),
])
def test_parse_target(text: str, expected: tuple | None) -> None:
    assert parse_target(text) == expected


def test_ssh_config_fills_what_an_inventory_host_leaves_unset(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host 10.9.*\n  User deploy\n  IdentityFile ~/.ssh/prod\n"
                      "  ProxyJump bastion.example.com\n")
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  web1: {address: 10.9.0.1}\n"
                         "  web2: {address: 10.9.0.2, user: admin, jump: none-needed}\n"
                         "  db1: {address: 10.8.0.1}\n")
    loaded = load_inventory([inventory], ssh_config=config, use_default_file=False)
    web1 = loaded.hosts["web1"]
    assert (web1.user, web1.jump) == ("deploy", "bastion.example.com")
    assert web1.identity_file == str(Path("~/.ssh/prod").expanduser())
    assert (loaded.hosts["web2"].user, loaded.hosts["web2"].jump) == ("admin", "none-needed")
    assert loaded.hosts["db1"].user is None and loaded.hosts["db1"].jump is None


def test_a_boolean_port_and_an_empty_address_are_errors_with_their_line(tmp_path: Path) -> None:
    cases = {"port: true": ("hosts.web1.port", "not true"),
             "port: false": ("hosts.web1.port", "not false"),
             "address:": ("hosts.web1.address", "address is empty"),
             "address: ''": ("hosts.web1.address", "address is empty"),
             "address: '  '": ("hosts.web1.address", "address is empty")}
    for line, (field, problem) in cases.items():
        path = tmp_path / "inventory.yaml"
        path.write_text(f"hosts:\n  web1:\n    role: web\n    {line}\n")
        error = inventory_error(path)
        assert (error.file, error.line, error.field) == (str(path), 4, field), line
        assert problem in error.problem, (line, error.problem)


def test_an_ssh_config_proxyjump_that_is_no_host_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "ssh_config"
    for value in (";touch /tmp/x", "$(id)", "a b", "web1,;x"):
        path.write_text(f"Host db1\n  HostName 10.0.0.5\n  ProxyJump {value}\n")
        with pytest.raises(InventoryError) as caught:
            parse_ssh_config(path)
        assert (caught.value.line, caught.value.field) == (3, "ProxyJump"), value
    for value in ("bastion", "ops@bastion:2222", "ssh://ops@bastion,10.0.0.1", "none", "[::1]:22"):
        path.write_text(f"Host db1\n  HostName 10.0.0.5\n  ProxyJump {value}\n")
        assert "db1" in parse_ssh_config(path).hosts, value
