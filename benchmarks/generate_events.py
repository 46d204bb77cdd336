#!/usr/bin/env python3
"""Generate Segment messages at any scale, with the identity structure of real traffic.

    python benchmarks/generate_events.py --events 1000000 --out events.jsonl.gz [--seed 7]

The output is gzip JSON Lines of exactly `--events` messages, streamed in
sessions so memory stays flat whatever the count: only the population of
people, devices and accounts is held in memory. The same arguments give
the same bytes, because every choice comes from one seeded random generator,
messageIds are counters and the gzip header carries no file name and mtime 0.

What the data contains, on purpose:

* People who never log in: their messages carry an anonymousId only.
* People who log in: an `identify` with userId, email and consent traits
  (`marketing_email`, `marketing_sms`, booleans) links the device's
  anonymousId to them. In 5% of identify calls, marketing_email flips.
  Before their first login on a device, their messages are anonymous.
  Most have one device, some two or three.
* Shared devices: some people also log in on a device of another person, so
  one anonymousId carries two userIds. A `user_id` limit of 1 must keep them
  apart.
* Junk identifiers: some devices send a placeholder anonymousId
  (`anonymous`, `null`, `undefined`, an empty string or an all-zero id), and
  some messages carry such a userId. They must never link anyone.
* Email variants: the same address in different case, or with spaces around it.
* Commerce: page calls, `Product Viewed`, `Product Added`, `Checkout Started`
  and `Order Completed`. Most order revenues are JSON numbers, some are
  numeric strings and a few are invalid strings.
* Accounts: `group` calls link logged-in people to accounts, with account traits.

Timestamps fall in [--start, --end), 2024-01-01 to 2024-07-01 by default.
Messages are written in session order, not sorted by time.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

try:  # orjson is faster when installed, and the standard library writes the same JSON values.
    import orjson

    def dumps(message: dict) -> bytes:
        return orjson.dumps(message)
except ImportError:  # pragma: no cover - depends on the environment
    import json

    def dumps(message: dict) -> bytes:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


MESSAGES_PER_PERSON = 40
JUNK_ANONYMOUS_IDS = ("anonymous", "null", "undefined", "", "00000000-0000-0000-0000-000000000000")
JUNK_USER_IDS = ("", "null", "undefined", "0")
PAGES = (("Home", "/"), ("Catalog", "/catalog"), ("Deals", "/deals"), ("Account", "/account"), ("Help", "/help"))
CATEGORIES = ("books", "music", "games", "garden", "kitchen", "toys", "sports", "office")
PLANS = ("free", "team", "business", "enterprise")


@dataclass
class Person:
    """One human: a userId and email when they log in, and the devices they use."""

    user_id: str | None
    emails: tuple[str, ...]
    devices: list[str]
    account: str | None
    marketing_email: bool
    marketing_sms: bool
    logged_in_devices: set[str] = field(default_factory=set)


@dataclass
class Population:
    people: list[Person]
    cumulative_weights: list[float]
    accounts: dict[str, dict]


def device_id(rng: random.Random) -> str:
    """Return a random UUID-shaped anonymousId drawn from the seeded generator."""
    text = f"{rng.getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def email_variants(index: int) -> tuple[str, ...]:
    """Return the ways one address is written: as stored, capitalised, and with spaces around it."""
    address = f"person{index}@example.com"
    return (address, f"Person{index}@Example.com", f" {address} ")


def build_population(rng: random.Random, events: int) -> Population:
    """Create the people, devices and accounts, about one person per 40 messages."""
    count = max(10, events // MESSAGES_PER_PERSON)
    account_count = max(1, count // 25)
    accounts = {
        f"acct_{number:05d}": {
            "name": f"Company {number}",
            "plan": rng.choice(PLANS),
            "employees": rng.randint(2, 5000),
        }
        for number in range(account_count)
    }
    account_ids = list(accounts)

    people = []
    for index in range(count):
        known = rng.random() < 0.7
        devices = [device_id(rng) for _ in range(1 + (rng.random() < 0.35) + (rng.random() < 0.1))]
        if rng.random() < 0.01:
            devices[0] = rng.choice(JUNK_ANONYMOUS_IDS)
        people.append(
            Person(
                user_id=f"u{index:08d}" if known else None,
                emails=email_variants(index) if known else (),
                devices=devices,
                account=rng.choice(account_ids) if known and rng.random() < 0.6 else None,
                marketing_email=rng.random() < 0.55,
                marketing_sms=rng.random() < 0.25,
            )
        )

    # About 2% of the people who log in also do so on another person's device.
    known_people = [person for person in people if person.user_id]
    for person in known_people:
        if rng.random() < 0.02:
            other = rng.choice(known_people)
            if other is not person and other.devices[0] not in person.devices:
                person.devices.append(other.devices[0])

    # Activity is skewed: a few people send many messages, most send a few.
    cumulative, total = [], 0.0
    for _ in people:
        total += rng.paretovariate(1.5)
        cumulative.append(total)
    return Population(people, cumulative, accounts)


class Clock:
    """Format epoch seconds as ISO 8601 UTC text from cached pieces, since strftime is slow."""

    def __init__(self, start: date, end: date) -> None:
        self.start = int(datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp())
        self.end = int(datetime(end.year, end.month, end.day, tzinfo=timezone.utc).timestamp())
        days = (end - start).days + 2
        self.days = [f"{start + timedelta(days=offset):%Y-%m-%d}T" for offset in range(days)]
        self.times = [f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}." for second in range(86_400)]
        self.millis = [f"{milli:03d}Z" for milli in range(1000)]

    def format(self, seconds: float) -> str:
        whole = int(seconds)
        day, second = divmod(whole - self.start, 86_400)
        return self.days[day] + self.times[second] + self.millis[int((seconds - whole) * 1000)]


class SessionWriter:
    """Produce the messages of one visit: pages, browsing, maybe a login, a cart and an order."""

    def __init__(self, rng: random.Random, population: Population, clock: Clock, seed: int) -> None:
        self.rng = rng
        self.population = population
        self.clock = clock
        self.prefix = f"g{seed}-"
        self.counter = 0

    def session(self) -> list[dict]:
        """Return the messages of one session, in order.

        Building a list is cheaper than nesting generators, and a session
        holds at most 84 messages: 40 steps of a view and an add, a login
        with its group call, and a checkout with its order.
        """
        rng = self.rng
        weights = self.population.cumulative_weights
        person = self.population.people[bisect.bisect(weights, rng.random() * weights[-1])]
        device = rng.choice(person.devices)
        # A session spans at most 40 steps of 90 s plus a purchase of 15 min, so starting
        # two hours before the end keeps every timestamp before --end.
        moment = rng.uniform(self.clock.start, self.clock.end - 7200)

        # Once a person has logged in on a device, its SDK keeps sending their userId.
        user_id = person.user_id if device in person.logged_in_devices else None
        will_log_in = person.user_id is not None and user_id is None and rng.random() < 0.5
        steps = min(40, 1 + int(rng.expovariate(0.25)))
        login_step = rng.randrange(steps) if will_log_in else -1

        messages: list[dict] = []
        for step in range(steps):
            moment += rng.uniform(2, 90)
            if step == login_step:
                person.logged_in_devices.add(device)
                user_id = person.user_id
                messages.append(self.identify(person, device, moment))
                if person.account and rng.random() < 0.3:
                    messages.append(self.group(person, device, moment))
            self.browse(messages, device, user_id, moment)
        if user_id is not None and rng.random() < 0.25:
            self.purchase(messages, device, user_id, moment + rng.uniform(10, 300))
        return messages

    def base(self, kind: str, device: str, user_id: str | None, moment: float) -> dict:
        self.counter += 1
        message = {"type": kind, "messageId": f"{self.prefix}{self.counter:010d}", "anonymousId": device}
        if user_id is not None:
            # A small share of logged-in traffic carries a broken userId, as buggy SDKs send.
            message["userId"] = user_id if self.rng.random() >= 0.01 else self.rng.choice(JUNK_USER_IDS)
        message["timestamp"] = self.clock.format(moment)
        return message

    def identify(self, person: Person, device: str, moment: float) -> dict:
        message = self.base("identify", device, person.user_id, moment)
        # Now and then a person changes their mind, so the latest consent value is what counts.
        if self.rng.random() < 0.05:
            person.marketing_email = not person.marketing_email
        message["traits"] = {
            "email": self.rng.choice(person.emails),
            "marketing_email": person.marketing_email,
            "marketing_sms": person.marketing_sms,
        }
        return message

    def group(self, person: Person, device: str, moment: float) -> dict:
        message = self.base("group", device, person.user_id, moment)
        message["groupId"] = person.account
        message["traits"] = self.population.accounts[person.account]
        return message

    def browse(self, messages: list[dict], device: str, user_id: str | None, moment: float) -> None:
        rng = self.rng
        if rng.random() < 0.45:
            name, path = PAGES[int(rng.random() * len(PAGES))]
            message = self.base("page", device, user_id, moment)
            message["name"] = name
            message["properties"] = {"name": name, "path": path}
            messages.append(message)
            return
        product = int(rng.random() * 5000)
        properties = {"product_id": f"p{product:05d}", "category": CATEGORIES[product % len(CATEGORIES)], "price": (product % 200) + 0.99}
        message = self.base("track", device, user_id, moment)
        message["event"] = "Product Viewed"
        message["properties"] = properties
        messages.append(message)
        if rng.random() < 0.2:
            message = self.base("track", device, user_id, moment + rng.uniform(1, 60))
            message["event"] = "Product Added"
            message["properties"] = {**properties, "quantity": 1 + (rng.random() < 0.2)}
            messages.append(message)

    def purchase(self, messages: list[dict], device: str, user_id: str, moment: float) -> None:
        message = self.base("track", device, user_id, moment)
        message["event"] = "Checkout Started"
        message["properties"] = {"currency": "USD"}
        messages.append(message)
        if self.rng.random() < 0.6:
            message = self.base("track", device, user_id, moment + self.rng.uniform(30, 600))
            message["event"] = "Order Completed"
            message["properties"] = {"order_id": f"o{self.counter:010d}", "revenue": self.revenue(), "currency": "USD"}
            messages.append(message)

    def revenue(self) -> float | str:
        """Return an order amount: mostly a number, 10% a numeric string, 1% an invalid string."""
        draw = self.rng.random()
        cents = self.rng.randint(100, 50_000)
        if draw < 0.01:
            return self.rng.choice(("abc", "N/A", "12,50", "free"))
        if draw < 0.11:
            return f"{cents // 100}.{cents % 100:02d}"
        return cents / 100


def generate(events: int, seed: int, start: date, end: date) -> Iterator[dict]:
    """Yield exactly `events` messages; the last session is cut short when needed."""
    rng = random.Random(seed)
    population = build_population(rng, events)
    writer = SessionWriter(rng, population, Clock(start, end), seed)
    produced = 0
    while produced < events:
        for message in writer.session():
            yield message
            produced += 1
            if produced == events:
                return


def write(path: Path, messages: Iterator[dict], chunk_bytes: int = 4 << 20) -> int:
    """Write messages as gzip JSON Lines atomically, and return how many were written.

    Lines are gathered in one reused buffer and compressed by a second thread
    in chunks of about `chunk_bytes`: zlib releases the GIL, so compression
    overlaps with generation. The buffer matters as much, because keeping
    many small `bytes` objects alive at once made each dumps call about four
    times slower on the benchmark machine.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(handle, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as out:
            with ThreadPoolExecutor(max_workers=1) as compressor:
                pending = None
                buffer = bytearray()
                for message in messages:
                    buffer += dumps(message)
                    buffer += b"\n"
                    count += 1
                    if len(buffer) >= chunk_bytes:
                        if pending is not None:
                            pending.result()
                        pending = compressor.submit(out.write, bytes(buffer))
                        buffer.clear()
                if pending is not None:
                    pending.result()
                out.write(bytes(buffer))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate Segment messages (gzip JSON Lines) for benchmarks and tests.")
    parser.add_argument("--events", type=int, required=True, help="number of messages to write")
    parser.add_argument("--out", type=Path, required=True, help="output file, gzip JSON Lines")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7); the same seed gives the same bytes")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1), help="first day, YYYY-MM-DD (default: 2024-01-01)")
    parser.add_argument("--end", type=date.fromisoformat, default=date(2024, 7, 1), help="day after the last, YYYY-MM-DD (default: 2024-07-01)")
    arguments = parser.parse_args(argv)
    if arguments.events < 1:
        parser.error(f"--events must be at least 1, got {arguments.events}")
    if arguments.end <= arguments.start:
        parser.error(f"--end {arguments.end} must come after --start {arguments.start}")

    began = time.perf_counter()
    count = write(arguments.out, generate(arguments.events, arguments.seed, arguments.start, arguments.end))
    elapsed = time.perf_counter() - began
    print(f"wrote {count} messages to {arguments.out} in {elapsed:.1f}s ({count / elapsed:,.0f} messages/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
