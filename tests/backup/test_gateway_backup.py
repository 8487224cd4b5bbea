"""A backup holds the gateway folder when it lives inside or beside the vault (sealed mail
and wrapped keys only), and ``init --from-backup`` puts it back inside the restored vault."""

from __future__ import annotations

from pathlib import Path

from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.usecases import backups
from mailvault.vault import Vault
from tests.backup.conftest import ADMIN, loose_modes
from tests.support import invoke

SECRET = b"Subject: pineapple merger\r\n\r\nThe zanzibar deal closes on Friday.\r\n"


def _vault_with_gateway(vault_path: Path, folder: Path | None) -> tuple[GatewayMailboxes, str,
                                                                         str, str]:
    Vault.create(vault_path).close()
    settings = '[gateway]\ndomain = "gw.example.org"\n'
    if folder is not None:
        settings += f'folder = "{folder}"\n'
    (vault_path / "mailvault.toml").write_text(settings)
    boxes = GatewayMailboxes(folder or vault_path / "gateway", "gw.example.org")
    info, password = boxes.create("journal")
    kept = boxes.deliver(info.id, SECRET)
    pulled = boxes.deliver(info.id, b"Subject: pulled\r\n\r\nalready archived\r\n")
    assert kept and pulled
    boxes.unlock(info.id, password).delete([pulled])
    boxes.close()
    return boxes, info.id, password, kept


def _restore(backup: Path, vault_path: Path, target: Path) -> None:
    restored = invoke("init", "--from-backup", backup, "--keys", vault_path / "keys",
                      "--vault", target)
    assert restored.exit_code == 0, restored.stdout


def test_the_gateway_folder_inside_the_vault_is_backed_up_and_restored(
        tmp_path: Path) -> None:
    vault_path = tmp_path / "vault"
    _boxes, mailbox_id, password, kept = _vault_with_gateway(vault_path, None)
    with Vault.open(vault_path) as vault:
        report = backups.back_up(vault, ADMIN, tmp_path / "backup")
    assert report.gateway_included
    held = [path for path in (tmp_path / "backup" / "gateway").rglob("*") if path.is_file()]
    assert any(path.name == "mailbox.json" for path in held)
    blob = b"".join(path.read_bytes() for path in held)
    for secret in (b"pineapple", b"zanzibar", password.encode()):
        assert secret not in blob
    assert backups.check_backup(ADMIN, tmp_path / "backup").ok

    _restore(tmp_path / "backup", vault_path, tmp_path / "restored")

    again = GatewayMailboxes(tmp_path / "restored" / "gateway", "gw.example.org")
    opened = again.unlock(mailbox_id, password)
    assert [m.id for m in opened.messages()] == [kept]  # the pulled one stays deleted
    assert opened.read(kept) == SECRET
    # The restored mailbox takes new mail and its puller can delete it.
    later = again.deliver(mailbox_id, b"Subject: later\r\n\r\nx\r\n", key="uidl-1")
    opened.delete([kept])
    assert [m.id for m in opened.messages()] == [later]
    assert loose_modes(tmp_path / "backup") == []
    assert loose_modes(tmp_path / "restored") == []


def test_a_gateway_folder_beside_the_vault_comes_back_inside(tmp_path: Path) -> None:
    vault_path = tmp_path / "vault"
    _boxes, mailbox_id, password, kept = _vault_with_gateway(vault_path, tmp_path / "gateway")
    with Vault.open(vault_path) as vault:
        assert backups.back_up(vault, ADMIN, tmp_path / "backup").gateway_included

    _restore(tmp_path / "backup", vault_path, tmp_path / "restored")

    with Vault.open(tmp_path / "restored") as restored:
        assert restored.settings.gateway.folder == ""  # not the old vault's folder
        again = GatewayMailboxes.of(restored.path, restored.settings.gateway)
    assert again.folder == tmp_path / "restored" / "gateway"
    assert again.unlock(mailbox_id, password).read(kept) == SECRET


def test_a_gateway_folder_elsewhere_is_left_out(tmp_path: Path) -> None:
    vault_path = tmp_path / "vault"
    _vault_with_gateway(vault_path, tmp_path / "elsewhere" / "gateway")
    with Vault.open(vault_path) as vault:
        report = backups.back_up(vault, ADMIN, tmp_path / "backup")
    assert not report.gateway_included
    assert not (tmp_path / "backup" / "gateway").exists()
