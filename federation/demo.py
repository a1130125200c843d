"""``ratsfed demo``: a whole federation on embedded defaults, every part real.

Nothing is mocked and nothing is read from the repository. The demo generates, for this run:

* a firmware vendor's **endorser key**, and a CoRIM it signs: the PSA device's attestation key,
  the device's firmware reference values, the SEV-SNP launch measurement of the confidential VM
  and a link to the firmware's build provenance;
* a **demo hardware vendor** shaped like AMD's (root ``ARK-Genoa`` and ``SEV-Genoa``, RSA,
  RSASSA-PSS) and one chip with a VCEK-shaped P-384 key whose certificate carries the hwID and
  TCB extensions (:mod:`federation.demo_attester`);
* three **verifier services** run by three operators (``ratsfed serve``, role ``verifier``), each
  with its own result-signing key, each trusting the endorser's key and the demo root (the
  configs say that production uses the pinned AMD roots), and a **federator** (role
  ``federator``, k = 2 of 3, veto, distinct operators) whose backends are those services
  (``kind = "veraison"``, each pinned to its verifier's public key).

The four services run as separate processes on 127.0.0.1 (any free port, each in its own process
group). A simulated attester then answers each federator session's challenge over Veraison's
challenge-response API (``newSession``, then the Evidence) with fresh Evidence bound to that
session's nonce, and the relying party verifies every combined result and re-verifies every vote
in it. Every process the demo started is stopped before it returns (SIGTERM, then SIGKILL), even
when a step fails or the demo is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urljoin

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from verifiers.local.corim.encode import sign_corim
from verifiers.local.corim.model import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    KeyTriple,
    Locator,
    Measurement,
    MeasurementValues,
    ReferenceTriple,
    Svn,
    Tagged,
    Triples,
    Validity,
)
from verifiers.local.schemes.sevsnp import CLASS_VCEK

from .demo_attester import (
    GENOA_TCB,
    POLICY_DEBUG,
    POLICY_DEFAULT,
    PsaDevice,
    SnpChip,
    SnpGuest,
    SnpVendor,
    firmware_digest,
)
from .errors import Error
from .evidence import Evidence
from .keys import SigningKey, TrustAnchor, b64url_decode
from .quorum import QuorumPolicy
from .result import VerifiedResult, verify_result

__all__ = [
    "FIRMWARE",
    "OPERATORS",
    "POLICY",
    "PROVENANCE_LINK",
    "Case",
    "DemoError",
    "DemoRun",
    "Material",
    "Scenario",
    "ServiceInfo",
    "VoteRow",
    "run_demo",
    "scenarios",
    "write_material",
]

PSA_IMPL_ID = b"demo-implementation-id-000000001"
PSA_INSTANCE_ID = b"\x01" + hashlib.sha256(b"demo device").digest()
PSA_SIGNER_ID = hashlib.sha256(b"acme signer").digest()
FIRMWARE = (("BL", "2.1.0"), ("PRoT", "1.3.5"), ("ARoT", "0.1.4"))
CVM_IMAGE = "acme-cvm-2.1.0 (OVMF + kernel + initrd + cmdline)"
PROVENANCE_LINK = "https://builds.example/acme/firmware/2.1.0/provenance.intoto.jsonl"
ENDORSER_NAME = "ACME Firmware Signing"
CORIM_ID = "demo-firmware-2.1.0"
OPERATORS = ("acme", "globex", "initech")
FEDERATION_ID = "ratsfed-demo"
POLICY = QuorumPolicy(k=2, n=3, veto=True, wait="all", distinct_operators=True, id="demo:2-of-3")
SESSION_TYPE = "application/vnd.veraison.challenge-response-session+json"
START_TIMEOUT = 30.0  # seconds for a service to announce its address
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
REQUEST_TIMEOUT = 20.0  # seconds for one HTTP exchange with the federator


class DemoError(Error):
    """The demo could not run (a service did not start, an exchange failed)."""

    reason = "demo"


# -- what the demo generates ------------------------------------------------------------------------


def _demo_corim(device: PsaDevice, guest: SnpGuest, endorser: SigningKey, now: datetime) -> bytes:
    """One CoRIM signed by the endorser: the PSA device (attestation key, firmware reference
    values) and the confidential VM (launch measurement, minimum reported TCB).

    A base CoRIM (no profile): the PSA profile admits PSA triples only, and SEV-SNP reference
    values travel in base CoRIMs keyed as docs/sevsnp.md describes (class-id = the VCEK class,
    mkey 0 = the guest with its SHA-384 launch digest, mkey 7 = a minimum REPORTED_TCB).
    """
    impl = Tagged("bytes", device.implementation_id, 560)
    signer = Tagged("bytes", device.signer_id, 560)
    firmware = tuple(
        Measurement(MeasurementValues(digests=(Digest(1, firmware_digest(n, v)),), name=n, cryptokeys=(signer,)),
                    mkey=Tagged("string", "psa.software-component"))
        for n, v in FIRMWARE
    )
    pem = device.key.public.key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    psa = Triples(
        reference=(ReferenceTriple(Environment(ClassMap(impl)), firmware),),
        attest_key=(KeyTriple(Environment(ClassMap(impl), instance=Tagged("ueid", device.instance_id, 550)),
                              (Tagged("pkix-base64-key", pem, 554),)),),
    )
    cvm = Triples(reference=(ReferenceTriple(Environment(ClassMap(CLASS_VCEK)), (
        Measurement(MeasurementValues(digests=(Digest(7, guest.measurement),)), Tagged("uint", 0)),
        Measurement(MeasurementValues(svn=Svn(int.from_bytes(GENOA_TCB, "little"), minimum=True)),
                    Tagged("uint", 7)),
    )),))
    corim = Corim(CORIM_ID, (Comid("acme-psa-firmware", psa, 1), Comid("acme-cvm-launch", cvm, 1)),
                  dependent_rims=(Locator((PROVENANCE_LINK,)),))
    meta = CorimMeta(ENDORSER_NAME, signature_validity=Validity(now - timedelta(days=1), now + timedelta(days=365)))
    return sign_corim(corim, endorser, meta)


def _psa_device(key: SigningKey) -> PsaDevice:
    return PsaDevice(key, PSA_IMPL_ID, PSA_INSTANCE_ID, PSA_SIGNER_ID)


def _corim(device: SigningKey, endorser: SigningKey, now: datetime) -> bytes:
    """The demo CoRIM for the PSA attestation key *device*, signed by *endorser* (kept for the
    end-to-end tests, which build their own world around the demo's CoRIM and tokens)."""
    return _demo_corim(_psa_device(device), SnpGuest.of_image(CVM_IMAGE), endorser, now)


def _token(device: SigningKey, nonce: bytes, firmware: tuple[tuple[str, str], ...] = FIRMWARE) -> bytes:
    """A PSA token of the demo device (key *device*) bound to *nonce* (see :func:`_corim`)."""
    return _psa_device(device).token(nonce, firmware).data


@dataclass(frozen=True)
class Material:
    """Every key, certificate and document of one demo run (all generated, nothing read)."""

    now: datetime
    endorser: SigningKey
    corim: bytes
    vendor: SnpVendor
    chip: SnpChip
    guest: SnpGuest
    device: PsaDevice
    rogue: PsaDevice  # same identity, a key nobody endorsed
    verifier_keys: dict[str, SigningKey]  # by operator
    federation_key: SigningKey

    @classmethod
    def generate(cls, now: datetime | None = None, *, rsa_bits: int = 4096) -> Material:
        when = now if now is not None else datetime.now(UTC)
        vendor = SnpVendor.generate(when, bits=rsa_bits)
        chip = SnpChip.generate(vendor, when)
        guest = SnpGuest.of_image(CVM_IMAGE)
        endorser = SigningKey.generate()
        device, rogue = _psa_device(SigningKey.generate()), _psa_device(SigningKey.generate())
        return cls(when, endorser, _demo_corim(device, guest, endorser, when), vendor, chip, guest, device, rogue,
                   {op: SigningKey.generate() for op in OPERATORS}, SigningKey.generate())

    def verifier_name(self, operator: str) -> str:
        return f"{operator}-verifier"

    def anchors(self) -> dict[str, TrustAnchor]:
        """Each verifier's result key, by backend name (what an RP pins to re-verify votes)."""
        return {self.verifier_name(op): TrustAnchor((k.public,)) for op, k in self.verifier_keys.items()}


@dataclass(frozen=True)
class Scenario:
    title: str
    evidence: str  # "SEV-SNP" or "PSA"
    expected: str
    make: Callable[[bytes], Evidence]  # the attester's answer to a session nonce


def scenarios(m: Material) -> list[Scenario]:
    """The demo's cases, in order (the replay case replays the Evidence of the PSA case before it)."""
    seen: dict[str, Evidence] = {}

    def genuine_psa(nonce: bytes) -> Evidence:
        seen["psa"] = m.device.token(nonce, FIRMWARE)
        return seen["psa"]

    def replayed(nonce: bytes) -> Evidence:
        return seen["psa"] if "psa" in seen else m.device.token(b"\x5a" * 32, FIRMWARE)

    debug_guest = SnpGuest(m.guest.measurement, POLICY_DEFAULT | POLICY_DEBUG)
    return [
        Scenario("confidential VM, endorsed launch measurement", "SEV-SNP", "affirming",
                 lambda n: m.chip.evidence(m.guest, n)),
        Scenario("PSA device, endorsed firmware", "PSA", "affirming", genuine_psa),
        Scenario("PSA device, unknown bootloader build", "PSA", "warning",
                 lambda n: m.device.token(n, (("BL", "2.2.0-dev"), *FIRMWARE[1:]))),
        Scenario("PSA token signed by a key nobody endorsed", "PSA", "contraindicated",
                 lambda n: m.rogue.token(n, FIRMWARE)),
        Scenario("replay of the PSA token of an earlier session", "PSA", "contraindicated", replayed),
        Scenario("confidential VM launched with debugging allowed", "SEV-SNP", "contraindicated",
                 lambda n: m.chip.evidence(debug_guest, n)),
    ]


# -- files: configs and keys --------------------------------------------------------------------------


def _q(text: str) -> str:
    return json.dumps(text)  # a TOML basic string


def _write_private(path: Path, key: SigningKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_pem())
    os.chmod(path, 0o600)


def _write_public(path: Path, key: SigningKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(key.public.jwk(), indent=2) + "\n")


def _verifier_config(m: Material, op: str, port: int) -> str:
    name = m.verifier_name(op)
    where = "the port it had in the demo run; federator.toml points here" if port else "0 = any free port"
    return f"""\
# rats-federation demo: the verifier service "{name}", run by operator "{op}" (written by `ratsfed demo`).
# Start it with: ratsfed serve --config verifier-{op}.toml
#
# DEMO TRUST, not for production: `amd_roots` names the root of the demo hardware vendor that
# `ratsfed demo` generated for this run (an ARK-shaped certificate, not AMD's). Production configs
# leave `amd_roots` out: the SEV-SNP scheme trusts only the AMD roots pinned in the code. The
# endorser key is the demo firmware vendor's, also generated for this run.

[federation]
id = {_q(name)}

[server]
role = "verifier"
verifier = {_q(name)}
host = "127.0.0.1"
port = {port}    # {where}

[[verifiers]]
name = {_q(name)}
kind = "local"
operator = {_q(op)}
timeout = 5

[verifiers.options]
corim = ["corim/demo-firmware.cbor"]          # signed by the demo endorser
endorsers = ["keys/endorser/public.jwk"]      # whose signature on CoRIMs this verifier accepts
signing_key = "keys/{op}/private.pem"         # this verifier's own result-signing key (mode 600)
amd_roots = ["amd/demo-root.pem"]             # DEMO ONLY: production uses the pinned AMD roots
allow_debug = false                           # a guest whose policy allows debugging is contraindicated
report_data = "raw"                           # SEV-SNP REPORT_DATA = the session nonce, zero-padded
"""


def _federator_config(m: Material, urls: dict[str, str]) -> str:
    members = "".join(f"""
[[verifiers]]
name = {_q(m.verifier_name(op))}
kind = "veraison"
operator = {_q(op)}
trust_anchor = "keys/{op}/public.jwk"   # that verifier's result key, pinned
timeout = 5
retries = 1
options = {{ url = {_q(urls[op])} }}
""" for op in OPERATORS)
    return f"""\
# rats-federation demo: the federator (written by `ratsfed demo`). Its backends are the three
# verifier services of verifier-*.toml; start those first, then:
#   ratsfed serve --config federator.toml
# Relying parties verify its results with federation.jwk:
#   ratsfed verify combined.jwt --keys federation.jwk [--reverify --config federator.toml]

[federation]
id = {_q(FEDERATION_ID)}
signing_key = "keys/federation/private.pem"   # mode 600; its public key is federation.jwk
deadline = 10
result_ttl = 3600   # an hour, so that the demo's combined.jwt can still be verified after reading this

[quorum]
k = {POLICY.k}
veto = true
wait = {_q(POLICY.wait)}
distinct_operators = true
policy_id = {_q(POLICY.id)}

[server]
role = "federator"
host = "127.0.0.1"
port = 0            # any free port; the address is printed at start
{members}"""


def write_material(folder: Path, m: Material) -> None:
    """The files the verifier configs name (CoRIM, demo root, keys) and those configs (port 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corim").mkdir(exist_ok=True)
    (folder / "corim" / "demo-firmware.cbor").write_bytes(m.corim)
    (folder / "amd").mkdir(exist_ok=True)
    (folder / "amd" / "demo-root.pem").write_bytes(m.vendor.root_pem)
    _write_public(folder / "keys" / "endorser" / "public.jwk", m.endorser)
    for op, key in m.verifier_keys.items():
        _write_private(folder / "keys" / op / "private.pem", key)
        _write_public(folder / "keys" / op / "public.jwk", key)
        (folder / f"verifier-{op}.toml").write_text(_verifier_config(m, op, 0))
    _write_private(folder / "keys" / "federation" / "private.pem", m.federation_key)
    _write_public(folder / "keys" / "federation" / "public.jwk", m.federation_key)
    _write_public(folder / "federation.jwk", m.federation_key)


# -- processes -----------------------------------------------------------------------------------------


_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait (they are delivered after): while the demo stops its
    services, and around fork, where an exception raised by a handler would be lost."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _child_setup(parent: int) -> None:  # pragma: no cover - runs in the child between fork and exec
    """The service starts with the stop signals unblocked (the demo blocks them around fork) and,
    on Linux, gets SIGTERM if the demo (pid *parent*) dies, even by SIGKILL; if the demo died
    before that was arranged, the child is already an orphan and leaves at once.

    The demo's own handlers (SIGTERM and SIGHUP raise KeyboardInterrupt in the demo) are inherited
    across fork and only reset by exec: a signal they caught in the child after this function
    returned, before exec, would be lost, and a service whose parent-death SIGTERM was lost so
    would outlive the demo. So the default dispositions come back first, while the signals are
    still blocked: any stop signal from here on ends the child, before or after exec."""
    for sig in _STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


@dataclass
class ServiceInfo:
    """One ``ratsfed serve`` process the demo started."""

    name: str
    role: str
    operator: str | None
    config: Path
    pid: int
    url: str = ""
    exit_code: int | None = None


class _Service:
    def __init__(self, name: str, role: str, operator: str | None, config: Path, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout = logs / f"{name}.stdout"
        self.stderr = logs / f"{name}.stderr"
        cmd = [sys.executable, "-m", "federation", "serve", "--config", str(config),
               "--host", "127.0.0.1", "--port", "0"]
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                preexec_fn=functools.partial(_child_setup, os.getpid()), env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.info = ServiceInfo(name, role, operator, config, self.proc.pid)

    def listening(self) -> str | None:
        """The announced URL once the service listens; raise if it exited first."""
        for line in self.stdout.read_text(errors="replace").splitlines():
            if " listening on " in line:
                self.info.url = line.rsplit(" ", 1)[1].strip().rstrip("/")
                return self.info.url
        if self.proc.poll() is not None:
            tail = self.stderr.read_text(errors="replace").strip().splitlines()[-3:]
            raise DemoError(f"{self.info.name} exited with {self.proc.returncode} before listening: "
                            f"{' | '.join(tail) or 'no output'}")
        return None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def _wait_listening(services: Sequence[_Service], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending:
        pending = [s for s in pending if s.listening() is None]
        if pending and time.monotonic() > deadline:
            raise DemoError(f"{', '.join(s.info.name for s in pending)} did not listen within {timeout:.0f} s "
                            f"(logs in {pending[0].stderr.parent})")
        if pending:
            time.sleep(0.02)


def _stop(services: Sequence[_Service], grace: float = STOP_GRACE) -> None:
    """SIGTERM every process group (the federator first), wait, SIGKILL the groups of those still
    running after *grace* seconds, reap all. (Signals go to a group only while its leader is
    unreaped, so that a recycled pid is never hit.)"""
    for s in reversed(services):
        if s.proc.poll() is None:
            s.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for s in reversed(services):
        try:
            s.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            s.signal(signal.SIGKILL)
            s.proc.wait()
        s.info.exit_code = s.proc.returncode


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP interrupt the demo like Ctrl-C, so that its clean-up still runs."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- the attester and the relying party -------------------------------------------------------------


@dataclass(frozen=True)
class VoteRow:
    name: str
    operator: str
    outcome: str
    status: str | None
    latency_ms: float | None
    problem: str | None = None


@dataclass(frozen=True)
class Case:
    number: int
    title: str
    evidence: str
    expected: str
    status: str  # what the relying party read from the verified combined result
    token: bytes
    nonce: bytes
    sent: Evidence  # what the attester answered the challenge with
    decision: str
    votes: tuple[VoteRow, ...]
    reverified: bool  # every vote re-verified under its verifier's key, the decision recomputed
    latency_ms: float  # newSession to result, as the attester saw it

    @property
    def ok(self) -> bool:
        return self.status == self.expected and self.reverified


def _problem(raw: bytes | None) -> str | None:
    """The first problem or finding a verifier stated in its (already verified) result."""
    if raw is None:
        return None
    try:
        payload = raw.split(b".")[1]
        claims = json.loads(b64url_decode(payload.decode("ascii")))
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    for sub in (claims.get("submods") or {}).values():
        pc = sub.get("ear.veraison.policy-claims") or sub.get("ear_veraison_policy_claims") or {}
        if isinstance(pc, dict):
            if pc.get("problem"):
                return str(pc["problem"])
            if pc.get("findings"):
                return "; ".join(map(str, pc["findings"]))
    return None


def _rows(checked: VerifiedResult) -> tuple[VoteRow, ...]:
    prov = checked.provenance
    if prov is None:
        raise DemoError("the combined result carries no provenance")
    latency = {v.get("name"): v.get("latency_ms") for v in prov.raw.get("votes", []) if isinstance(v, dict)}
    return tuple(VoteRow(v.name, v.operator, v.outcome.value, v.status, latency.get(v.name), _problem(v.result))
                 for v in prov.votes)


async def _exchange(http: Any, base: str, make: Callable[[bytes], Evidence]
                    ) -> tuple[bytes, bytes, Evidence, float]:
    """One challenge-response round trip: (combined token, session nonce, Evidence, milliseconds)."""
    started = time.perf_counter()
    new = f"{base}/challenge-response/v1/newSession"
    async with http.post(f"{new}?nonceSize=32", headers={"Accept": SESSION_TYPE}) as resp:
        if resp.status != 201 or "Location" not in resp.headers:
            raise DemoError(f"newSession answered {resp.status}: {(await resp.text())[:200]}")
        session = urljoin(new, resp.headers["Location"])
        doc = await resp.json(content_type=None)
    nonce = b64url_decode(doc["nonce"])
    evidence = make(nonce)
    try:
        async with http.post(session, data=evidence.data,
                             headers={"Accept": SESSION_TYPE, "Content-Type": evidence.media_type}) as resp:
            if resp.status != 200:
                raise DemoError(f"the Evidence POST answered {resp.status}: {(await resp.text())[:200]}")
            doc = await resp.json(content_type=None)
    finally:  # best effort: the session expires anyway
        with contextlib.suppress(Exception):
            async with http.delete(session):
                pass
    if doc.get("status") != "complete" or not isinstance(doc.get("result"), str):
        raise DemoError(f"session ended {doc.get('status')!r} without a result")
    return doc["result"].encode("ascii"), nonce, evidence, (time.perf_counter() - started) * 1000


async def _attest(federator: str, m: Material) -> list[Case]:
    import aiohttp

    fed_anchor = TrustAnchor((m.federation_key.public,))
    anchors = m.anchors()
    cases = []
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for i, sc in enumerate(scenarios(m), 1):
            try:
                token, nonce, sent, ms = await _exchange(http, federator, sc.make)
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                raise DemoError(f"case {i}: the exchange with the federator failed: {type(exc).__name__}: "
                                f"{str(exc)[:200]}") from exc
            checked = verify_result(token, fed_anchor, nonce=nonce, reverify=True, anchors=anchors)
            prov = checked.provenance
            cases.append(Case(i, sc.title, sc.evidence, sc.expected, checked.status, token, nonce, sent,
                              prov.decision if prov is not None else "", _rows(checked),
                              checked.decision is not None, ms))
    return cases


def _write_evidence(folder: Path, cases: Sequence[Case]) -> None:
    """Each case's Evidence and session nonce, to replay against ``POST /v1/appraise?nonce=HEX``."""
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for c in cases:
        name = f"{c.number}-{c.evidence.lower()}.{'cose' if c.evidence == 'PSA' else 'cbor'}"
        (folder / name).write_bytes(c.sent.data)
        index.append({"case": c.number, "title": c.title, "file": name, "media_type": c.sent.media_type,
                      "nonce": c.nonce.hex(), "expected": c.expected})
    (folder / "index.json").write_text(json.dumps(index, indent=2) + "\n")


# -- the run ---------------------------------------------------------------------------------------------


@dataclass
class DemoRun:
    folder: Path
    cases: list[Case]
    services: list[ServiceInfo]
    policy: str
    combined: Path | None
    federation_jwk: Path
    seconds: float
    setup_seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.cases) and all(c.ok for c in self.cases) and self.combined is not None


def run_demo(out: str | Path | None = None, *, say: Callable[[str], None] | None = None,
             rsa_bits: int = 4096) -> DemoRun:
    """Generate everything into *out* (default: a new temporary folder, kept), start the four
    services, run the cases, stop every process; the folder then holds the configs, keys,
    ``combined.jwt`` (the first case's combined result), ``federation.jwk`` and the logs."""
    tell = say or (lambda _line: None)
    started = time.monotonic()
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="ratsfed-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    tell(f"generating keys, certificates and the CoRIM in {folder} ...")
    m = Material.generate(rsa_bits=rsa_bits)
    write_material(folder, m)
    tell(f"starting the services ({time.monotonic() - started:.1f} s so far):")
    logs = folder / "logs"
    services: list[_Service] = []
    cases: list[Case] = []
    setup = 0.0
    with _interruptible():
        try:
            for op in OPERATORS:
                with _signals_blocked():  # a stop signal lands after the service is on the list to stop
                    services.append(_Service(m.verifier_name(op), "verifier", op, folder / f"verifier-{op}.toml",
                                             logs))
            _wait_listening(services)
            urls = {s.info.operator or "": s.info.url for s in services}
            for s in services:  # the configs left behind name the ports the federator's config points at
                op = s.info.operator or ""
                s.info.config.write_text(_verifier_config(m, op, int(s.info.url.rsplit(":", 1)[1])))
            (folder / "federator.toml").write_text(_federator_config(m, urls))
            with _signals_blocked():
                services.append(_Service("federator", "federator", None, folder / "federator.toml", logs))
            _wait_listening(services[-1:])
            for s in services:
                tell(f"  {s.info.name:<17} {s.info.role:<9} pid {s.info.pid:<7} {s.info.url}")
            setup = time.monotonic() - started
            cases = asyncio.run(_attest(services[-1].info.url, m))
        finally:
            with _signals_blocked():
                _stop(services)
    combined = None
    if cases:
        combined = folder / "combined.jwt"
        combined.write_bytes(cases[0].token)
        _write_evidence(folder / "evidence", cases)
    return DemoRun(folder, cases, [s.info for s in services], POLICY.describe(), combined,
                   folder / "federation.jwk", time.monotonic() - started, setup)
