"""Deterministic sample data: `records` live Accounts and proportional related objects.

Fast enough for 1,000,000 Accounts: values are drawn column-wise (`Random.choices` over
small pools) per chunk with a per-chunk seed, written with `executemany` in big
transactions while journalling is off; indexes are built after the load.

Every 101st Account row is soft-deleted (IsDeleted = true) on top of the `records` live
ones, so `query` sees exactly `records` Accounts and `queryAll` a few more.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from itertools import repeat
from typing import Any

from forcebeam.emulator.records import ids
from forcebeam.emulator.records.schema import (
    ACCOUNT_TYPES,
    CASE_STATUSES,
    INDUSTRIES,
    INVOICE_STATUSES,
    LEAD_STATUSES,
    ORIGINS,
    PRIORITIES,
    RATINGS,
    SCHEMA,
    STAGES,
    ObjectDef,
    Schema,
)
from forcebeam.emulator.records.values import datetime_to_ms
from forcebeam.emulator.state.identity import (
    INTEGRATION_USER_ID,
    INTEGRATION_USERNAME,
    MTLS_USER_ID,
    MTLS_USERNAME,
    ORG_ID,
    ORG_NAME,
)

CHUNK_ROWS = 50_000
DELETED_EVERY = 101  # row serials divisible by this are soft-deleted
OWNER_COUNT = 8  # sales users besides the two integration users
SPAN_START = datetime(2023, 1, 1, tzinfo=timezone.utc)
SPAN_DAYS = 3 * 365
START_MS = datetime_to_ms(SPAN_START)
DAY_MS = 86_400_000

FIRST_NAMES = ("Ada", "Björn", "Chloé", "Dmitri", "Elif", "Farah", "Gustavo", "Hana", "Ivan",
               "Jürgen", "Kofi", "Lucía", "Mei", "Nikolai", "Olúwaseun", "Priya", "Quinn",
               "Rafael", "Søren", "Tomás", "Uma", "Valentina", "Wei", "Xavier", "Yuki", "Zoë")
LAST_NAMES = ("Okafor", "Müller", "García", "Nguyen", "O'Brien", "Smith", "Kowalski", "Rossi",
              "Tanaka", "Haddad", "Dubois", "Johansson", "Singh", "Ivanova", "da Silva", "Kim")
COMPANY_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
                 "Soylent", "Cyberdyne", "Tyrell", "Aperture", "Wonka", "Gringotts", "Nakatomi")
COMPANY_SUFFIXES = ("Corp", "Inc.", "GmbH", "S.A.", "Ltd", "& Sons", "Holdings", "Labs")
CITIES = (("San Francisco", "CA", "94105", "USA"), ("New York", "NY", "10001", "USA"),
          ("München", "BY", "80331", "Germany"), ("São Paulo", "SP", "01000-000", "Brazil"),
          ("Zürich", "ZH", "8001", "Switzerland"), ("Tokyo", "13", "100-0001", "Japan"),
          ("London", None, "EC1A 1BB", "United Kingdom"), ("Austin", "TX", "73301", "USA"))
STREETS = ("1 Market St", "742 Evergreen Terrace", "221B Baker Street",
           "Suite 400,\n55 Main Street", "Königsallee 12", "10 Downing St, Floor 2")
DESCRIPTIONS = (None, None, "Key account", 'Prefers "email" contact, never calls',
                "Multi-line note:\nline two, with comma\nline three",
                "Ünïcödé customer — ☃ and 日本語", "Comma, separated, values", "",
                "Tab\tseparated and trailing space ")
TITLES = ("CEO", "CTO", "VP Sales", "Buyer", "Engineer", "Analyst", None)


def _company(rng: random.Random, n: int) -> list[str]:
    words = rng.choices(COMPANY_WORDS, k=n)
    suffixes = rng.choices(COMPANY_SUFFIXES, k=n)
    return [f"{w} {s}" for w, s in zip(words, suffixes, strict=True)]


def _audit(rng: random.Random, n: int, users: list[str]) -> dict[str, list[Any]]:
    created = [START_MS + int(r * SPAN_DAYS * DAY_MS) for r in (rng.random() for _ in range(n))]
    modified = [c + int(r * 180 * DAY_MS) for c, r in zip(created, (rng.random() for _ in range(n)),
                                                          strict=True)]
    return {"CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": modified,
            "CreatedById": list(repeat(INTEGRATION_USER_ID, n)),
            "LastModifiedById": rng.choices(users, k=n)}


def _accounts(rng: random.Random, serials: range, users: list[str], accounts: int
              ) -> dict[str, list[Any]]:
    n = len(serials)
    cities = rng.choices(CITIES, k=n)
    names = [f"{c} {serial}" for c, serial in zip(_company(rng, n), serials, strict=True)]
    return {
        "Name": names, "Type": rng.choices(ACCOUNT_TYPES, k=n),
        "ParentId": [ids.make_id("001", s // 10) if s % 10 == 0 and s > 10 else None
                     for s in serials],
        "BillingStreet": rng.choices(STREETS, k=n), "BillingCity": [c[0] for c in cities],
        "BillingState": [c[1] for c in cities], "BillingPostalCode": [c[2] for c in cities],
        "BillingCountry": [c[3] for c in cities],
        "Phone": [f"+1 415 555 {s % 10000:04d}" for s in serials],
        "Website": [f"https://www.example-{s}.com" for s in serials],
        "Industry": rng.choices((*INDUSTRIES, None), k=n),
        "AnnualRevenue": [float(v) if v else None
                          for v in rng.choices((0, 50_000, 1_250_000, 9_800_000, 42_000_000,
                                                None), k=n)],
        "NumberOfEmployees": rng.choices((1, 12, 250, 1200, 48000, None), k=n),
        "Description": rng.choices(DESCRIPTIONS, k=n), "Rating": rng.choices((*RATINGS, None), k=n),
        "OwnerId": rng.choices(users, k=n),
        "External_Id__c": [f"ACC-{s:08d}" for s in serials],
    }


def _contacts(rng: random.Random, serials: range, users: list[str], accounts: int
              ) -> dict[str, list[Any]]:
    n = len(serials)
    first = rng.choices(FIRST_NAMES, k=n)
    last = rng.choices(LAST_NAMES, k=n)
    return {
        "AccountId": [ids.make_id("001", (s * 2 - 1) % max(accounts, 1) + 1) if accounts else None
                      for s in serials],
        "FirstName": first, "LastName": last,
        "Name": [f"{f} {la}" for f, la in zip(first, last, strict=True)],
        "Email": [f"contact{s}@example.org" for s in serials],
        "Phone": [f"(555) 010-{s % 10000:04d}" for s in serials],
        "Title": rng.choices(TITLES, k=n),
        "Birthdate": [f"{1950 + s % 50}-{1 + s % 12:02d}-{1 + s % 28:02d}" for s in serials],
        "HasOptedOutOfEmail": [1 if s % 7 == 0 else 0 for s in serials],
        "Description": rng.choices(DESCRIPTIONS, k=n), "OwnerId": rng.choices(users, k=n),
        "External_Id__c": [f"CON-{s:08d}" for s in serials],
    }


def _opportunities(rng: random.Random, serials: range, users: list[str], accounts: int
                   ) -> dict[str, list[Any]]:
    n = len(serials)
    stages = rng.choices(STAGES, k=n)
    return {
        "AccountId": [ids.make_id("001", (s * 4 - 1) % max(accounts, 1) + 1) for s in serials],
        "Name": [f"Deal {s}" for s in serials], "StageName": stages,
        "Amount": rng.choices((1000.0, 25_000.5, 99_999.99, 1_000_000.0, None), k=n),
        "Probability": [100.0 if st == "Closed Won" else 0.0 if st == "Closed Lost" else 50.0
                        for st in stages],
        "CloseDate": [(SPAN_START + timedelta(days=s % SPAN_DAYS)).date().isoformat()
                      for s in serials],
        "IsWon": [1 if st == "Closed Won" else 0 for st in stages],
        "Description": rng.choices(DESCRIPTIONS, k=n), "OwnerId": rng.choices(users, k=n),
    }


def _leads(rng: random.Random, serials: range, users: list[str], accounts: int
           ) -> dict[str, list[Any]]:
    n = len(serials)
    first = rng.choices(FIRST_NAMES, k=n)
    last = rng.choices(LAST_NAMES, k=n)
    return {
        "FirstName": first, "LastName": last,
        "Name": [f"{f} {la}" for f, la in zip(first, last, strict=True)],
        "Company": _company(rng, n), "Status": rng.choices(LEAD_STATUSES, k=n),
        "Email": [f"lead{s}@example.net" for s in serials],
        "Phone": [f"555-01{s % 100:02d}" for s in serials],
        "Rating": rng.choices((*RATINGS, None), k=n),
        "AnnualRevenue": rng.choices((10_000.0, 500_000.0, None), k=n),
        "NumberOfEmployees": rng.choices((5, 50, 500, None), k=n),
        "OwnerId": rng.choices(users, k=n),
    }


def _cases(rng: random.Random, serials: range, users: list[str], accounts: int
           ) -> dict[str, list[Any]]:
    n = len(serials)
    statuses = rng.choices(CASE_STATUSES, k=n)
    return {
        "CaseNumber": [f"{s:08d}" for s in serials],
        "AccountId": [ids.make_id("001", (s * 20 - 1) % max(accounts, 1) + 1) for s in serials],
        "ContactId": [ids.make_id("003", s * 10) if accounts else None for s in serials],
        "Subject": [f"Issue #{s}: cannot log in" for s in serials],
        "Description": rng.choices(DESCRIPTIONS, k=n), "Status": statuses,
        "Priority": rng.choices(PRIORITIES, k=n), "Origin": rng.choices(ORIGINS, k=n),
        "IsClosed": [1 if st == "Closed" else 0 for st in statuses],
        "OwnerId": rng.choices(users, k=n),
    }


def _invoices(rng: random.Random, serials: range, users: list[str], accounts: int
              ) -> dict[str, list[Any]]:
    n = len(serials)
    return {
        "Name": [f"INV-{s:07d}" for s in serials],
        "Account__c": [ids.make_id("001", (s * 10 - 1) % max(accounts, 1) + 1) for s in serials],
        "Contact__c": [ids.make_id("003", s * 5) for s in serials],
        "External_Id__c": [f"INV-EXT-{s:08d}" for s in serials],
        "Status__c": rng.choices(INVOICE_STATUSES, k=n),
        "Amount__c": [round(10 + (s * 7919 % 100_000) / 100, 2) for s in serials],
        "Tax_Rate__c": rng.choices((0.0, 7.25, 19.0, 20.0), k=n),
        "Quantity__c": [float(1 + s % 40) for s in serials],
        "Due_Date__c": [(SPAN_START + timedelta(days=s % (SPAN_DAYS + 60))).date().isoformat()
                        for s in serials],
        "Issued_At__c": [START_MS + (s * 3_600_000 * 7) % (SPAN_DAYS * DAY_MS) for s in serials],
        "Paid__c": [1 if s % 3 == 0 else 0 for s in serials],
        "Notes__c": rng.choices(DESCRIPTIONS, k=n),
        "Portal_Url__c": [f"https://billing.example.com/i/{s}" for s in serials],
        "Billing_Email__c": [f"ap{s}@example.com" for s in serials],
        "Billing_Phone__c": [f"+44 20 7946 {s % 10000:04d}" for s in serials],
        "Location__Latitude__s": [round(-60 + (s * 37 % 12000) / 100, 6) for s in serials],
        "Location__Longitude__s": [round(-170 + (s * 53 % 34000) / 100, 6) for s in serials],
        "OwnerId": rng.choices(users, k=n),
    }


Generator = Callable[..., dict[str, list[Any]]]


def plan(records: int) -> list[tuple[str, int, Generator]]:
    """(object, total rows incl. soft-deleted, column generator) in load order."""
    def total(live: int) -> int:
        return live + live // (DELETED_EVERY - 1)
    return [
        ("Account", total(records), _accounts),
        ("Contact", total(records // 2), _contacts),
        ("Opportunity", total(records // 4), _opportunities),
        ("Lead", total(records // 20), _leads),
        ("Case", total(records // 20), _cases),
        ("Invoice__c", total(records // 10), _invoices),
    ]


def _users() -> list[dict[str, Any]]:
    people = [(INTEGRATION_USER_ID, INTEGRATION_USERNAME, "Integration", "User"),
              (MTLS_USER_ID, MTLS_USERNAME, "Mutual TLS", "Integration")]
    for serial in range(3, 3 + OWNER_COUNT):
        first, last = FIRST_NAMES[serial], LAST_NAMES[serial % len(LAST_NAMES)]
        people.append((ids.make_id("005", serial), f"rep{serial}@forcebeam.emulator", first,
                       last))
    rows = []
    for user_id, username, first, last in people:
        rows.append({"Id": user_id, "Username": username, "FirstName": first, "LastName": last,
                     "Name": f"{first} {last}", "Email": username,
                     "Alias": (first[:1] + last[:4]).lower(), "IsActive": 1,
                     "ManagerId": None if user_id == INTEGRATION_USER_ID else INTEGRATION_USER_ID,
                     "CreatedDate": START_MS, "LastModifiedDate": START_MS,
                     "SystemModstamp": START_MS, "CreatedById": INTEGRATION_USER_ID,
                     "LastModifiedById": INTEGRATION_USER_ID})
    return rows


def _chunks(obj: ObjectDef, total_rows: int, seed: int, generate: Generator, users: list[str],
            accounts: int) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]:
    for chunk_index, first in enumerate(range(1, total_rows + 1, CHUNK_ROWS)):
        serials = range(first, min(first + CHUNK_ROWS, total_rows + 1))
        rng = random.Random(f"{seed}:{obj.name}:{chunk_index}")
        columns = generate(rng, serials, users, accounts)
        columns.update(_audit(rng, len(serials), users))
        columns["_row"] = list(serials)
        columns["Id"] = [ids.make_id(obj.key_prefix, s) for s in serials]
        if obj.has_is_deleted:
            columns["IsDeleted"] = [1 if s % DELETED_EVERY == 0 else 0 for s in serials]
        names = list(columns)
        yield names, list(zip(*(columns[name] for name in names), strict=True))


def populate(conn: sqlite3.Connection, records: int, seed: int, schema: Schema = SCHEMA) -> None:
    """Fill empty tables (created by the store) with the deterministic data set."""
    user_rows = _users()
    user_ids = [u["Id"] for u in user_rows]
    owners = [u for u in user_ids if u != MTLS_USER_ID]
    names = list(user_rows[0])
    conn.executemany(
        f"INSERT INTO \"User\" (_row, {', '.join(_q(n) for n in names)}) "  # noqa: S608
        f"VALUES ({', '.join('?' for _ in range(len(names) + 1))})",
        [(ids.serial_of(u["Id"]), *u.values()) for u in user_rows])
    conn.execute(
        'INSERT INTO "Organization" (_row, "Id", "Name", "IsSandbox", "OrganizationType", '
        '"InstanceName", "TimeZoneSidKey", "LanguageLocaleKey", "CreatedDate", "CreatedById", '
        '"LastModifiedDate", "LastModifiedById", "SystemModstamp") '
        "VALUES (?, ?, ?, 0, 'Developer Edition', 'EMU1', 'GMT', 'en_US', ?, ?, ?, ?, ?)",
        [ids.serial_of(ORG_ID), ORG_ID, ORG_NAME, START_MS, INTEGRATION_USER_ID, START_MS,
         INTEGRATION_USER_ID, START_MS])
    accounts = plan(records)[0][1]
    for object_name, total_rows, generate in plan(records):
        obj = schema.object(object_name)
        assert obj is not None
        for columns, rows in _chunks(obj, total_rows, seed, generate, owners, accounts):
            conn.executemany(
                f"INSERT INTO {_q(obj.table)} ({', '.join(_q(c) for c in columns)}) "  # noqa: S608
                f"VALUES ({', '.join('?' for _ in columns)})", rows)


def _q(name: str) -> str:
    return '"' + name + '"'
