"""SOQL errors worded the way Salesforce words them (wire reference §4.2)."""

from __future__ import annotations


class SoqlError(Exception):
    """A query Salesforce would refuse: `code` is the REST errorCode (MALFORMED_QUERY, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def located(soql: str, line: int, column: int, detail: str) -> str:
    """Salesforce's caret message: the query line, a caret under the culprit, row/column."""
    lines = soql.split("\n")
    text = lines[line - 1] if 0 < line <= len(lines) else soql
    return f"\n{text}\n{' ' * max(column - 1, 0)}^\nERROR at Row:{line}:Column:{column}\n{detail}"


def no_such_column(field: str, sobject: str) -> str:
    return (f"No such column '{field}' on entity '{sobject}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.")


def unsupported_sobject(name: str) -> str:
    return (f"sObject type '{name}' is not supported. If you are attempting to use a custom "
            "object, be sure to append the '__c' after the entity name. Please reference your "
            "WSDL or the describe call for the appropriate names.")


def bad_relationship(name: str) -> str:
    return (f"Didn't understand relationship '{name}' in field path. If you are attempting to "
            "use a custom relationship, be sure to append the '__r' after the custom "
            "relationship name. Please reference your WSDL or the describe call for the "
            "appropriate names.")
