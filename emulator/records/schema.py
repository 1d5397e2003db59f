"""The emulated org's objects and fields, and their describe JSON.

One declaration per field drives everything else: the SQLite columns (store), the SOQL
name resolution (soql), write validation (validation) and the describe responses (wire).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Seeded users. Their ids are fixed (serials 1..N of the User object) so that the server
# core (identity) and the records agree on who owns what.
USER_KEY_PREFIX = "005"

SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "picklist": "xsd:string",
    "textarea": "xsd:string", "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string",
    "boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double",
    "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date",
    "datetime": "xsd:dateTime", "address": "urn:address", "location": "urn:location",
}
COMPOUND_TYPES = frozenset({"address", "location"})
TEXT_TYPES = frozenset({"id", "reference", "string", "picklist", "textarea", "email", "phone",
                        "url"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
# Salesforce's "Support for Field Types in Aggregate Functions" table, by emulator type.
_ORDERED_TYPES = NUMBER_TYPES | {"date", "datetime"} | TEXT_TYPES
AGGREGATE_FIELD_TYPES = {"COUNT": _ORDERED_TYPES, "COUNT_DISTINCT": _ORDERED_TYPES,
                         "MIN": _ORDERED_TYPES, "MAX": _ORDERED_TYPES,
                         "SUM": NUMBER_TYPES, "AVG": NUMBER_TYPES}
# Not groupable on a real org: fractional numbers, datetimes, long text, compound fields,
# auto-numbers and (text) formulas.
_NOT_GROUPABLE_TYPES = frozenset({"double", "currency", "percent", "datetime"}) | COMPOUND_TYPES


@dataclass(frozen=True)
class FieldDef:
    """One field of an sObject, with everything describe and validation need."""

    name: str
    type: str
    label: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    restricted_picklist: bool = False
    default_value: str | None = None
    compound_field_name: str | None = None
    components: tuple[tuple[str, str], ...] = ()  # compound: (json key, component field)
    name_field: bool = False
    calculated: bool = False
    auto_number: bool = False
    # A cross-object formula (calculated, read-only, no storage column): the value of
    # `formula[1]` on the record `formula[0]` (a reference field of this object) points to.
    formula: tuple[str, str] | None = None

    @property
    def is_compound(self) -> bool:
        return self.type in COMPOUND_TYPES

    @property
    def stored_columns(self) -> list[str]:
        """The SQLite columns holding this field: a compound field's components, else its own
        (what a SELECT of the field reads, in this order)."""
        return [component for _, component in self.components] if self.is_compound \
            else [self.name]

    @property
    def is_long_text(self) -> bool:
        """A text area over 255 characters: not filterable, sortable, groupable or counted."""
        return self.type == "textarea" and self.length > 255

    @property
    def formula_text(self) -> str | None:
        """The formula as describe shows it, e.g. ``Account.Name``."""
        if self.formula is None:
            return None
        reference, parent_field = self.formula
        relationship = reference[:-2] if reference.endswith("Id") else reference
        return f"{relationship}.{parent_field}"

    @property
    def defaulted_on_create(self) -> bool:
        # OwnerId defaults to the running user (as in Salesforce's describe).
        return (self.default_value is not None or self.type == "boolean" or self.auto_number
                or not self.createable or self.name == "OwnerId")

    @property
    def required_on_create(self) -> bool:
        return not self.nillable and self.createable and not self.defaulted_on_create

    @property
    def groupable(self) -> bool:
        """GROUP BY accepts this field (describe's ``groupable``; the query compiler's rule)."""
        if self.type in _NOT_GROUPABLE_TYPES or self.auto_number or self.formula is not None:
            return False
        return not self.is_long_text

    def aggregatable_by(self, function: str) -> bool:
        """The aggregate ``function`` (COUNT, SUM, ...) accepts this field."""
        return not self.is_long_text and self.type in AGGREGATE_FIELD_TYPES[function]

    def describe(self) -> dict[str, Any]:
        """Field object of describe (wire §4.3): every key present, unused ones null/false."""
        filterable = not self.is_long_text
        return {
            "aggregatable": self.aggregatable_by("COUNT"),
            "aiPredictionField": False,
            "autoNumber": self.auto_number,
            "byteLength": self.length * 3 if self.type in TEXT_TYPES else 0,
            "calculated": self.calculated,
            "calculatedFormula": self.formula_text,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": self.compound_field_name,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": (self.type == "boolean" and self.default_value == "true")
            if self.type == "boolean" else self.default_value,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted_on_create,
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.digits,
            "displayLocationInDecimal": self.type == "location",
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": _EXTRA_TYPE_INFO.get(self.type),
            "filterable": filterable and not self.is_compound,
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": self.groupable,
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": self.type == "id" or self.external_id or self.name == "Username",
            "inlineHelpText": None,
            "label": self.label,
            "length": self.length,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": self.name == "OwnerId",
            "nillable": self.nillable,
            "permissionable": self.nillable and self.custom,
            "picklistValues": [
                {"active": True, "defaultValue": value == self.default_value, "label": value,
                 "validFor": None, "value": value} for value in self.picklist],
            "polymorphicForeignKey": False,
            "precision": self.precision,
            "queryByDistance": self.type == "location",
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted_picklist,
            "scale": self.scale,
            "searchPrefilterable": False,
            "soapType": SOAP_TYPES[self.type],
            "sortable": filterable and not self.is_compound,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


_EXTRA_TYPE_INFO = {"textarea": "plaintextarea", "url": "url", "id": None}


@dataclass
class ObjectDef:
    """An sObject: key prefix, labels, and its fields by lower-cased name."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    custom: bool
    field_list: list[FieldDef]
    replicateable: bool = True  # describe's flag: getUpdated/getDeleted (replication) allowed
    fields: dict[str, FieldDef] = field(init=False)
    relationships: dict[str, FieldDef] = field(init=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the lookups after ``field_list`` changed (fields added/removed at run time)."""
        self.fields = {f.name.lower(): f for f in self.field_list}
        self.relationships = {f.relationship_name.lower(): f for f in self.field_list
                              if f.relationship_name}

    @property
    def table(self) -> str:
        return self.name

    @property
    def storage_fields(self) -> list[FieldDef]:
        """Fields with their own SQLite column (compound fields are views of components)."""
        return [f for f in self.field_list if not f.is_compound and f.formula is None]

    @property
    def has_is_deleted(self) -> bool:
        return "isdeleted" in self.fields

    def field(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())

    def global_describe(self, version: str) -> dict[str, Any]:
        """describeGlobal entry (`/sobjects`)."""
        base = f"/services/data/v{version}/sobjects/{self.name}"
        is_user = self.name == "User"
        return {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": True, "custom": self.custom, "customSetting": False,
            "deepCloneable": False, "deletable": not is_user, "deprecatedAndHidden": False,
            "feedEnabled": not self.custom, "hasSubtypes": False, "isInterface": False,
            "isSubtype": False, "keyPrefix": self.key_prefix, "label": self.label,
            "labelPlural": self.label_plural, "layoutable": True, "mergeable": not self.custom,
            "mruEnabled": True, "name": self.name, "queryable": True,
            "replicateable": self.replicateable,
            "retrieveable": True, "searchable": True, "triggerable": True,
            "undeletable": not is_user, "updateable": True,
            "urls": {"sobject": base, "describe": f"{base}/describe",
                     "rowTemplate": f"{base}/{{ID}}"},
        }

    def describe(self, version: str, schema: Schema) -> dict[str, Any]:
        """Full describe (`/sobjects/X/describe`)."""
        result = self.global_describe(version)
        base = f"/services/data/v{version}/sobjects/{self.name}"
        result.update({
            "actionOverrides": [], "childRelationships": schema.child_relationships(self),
            "compactLayoutable": True, "defaultImplementation": None, "extendedBy": None,
            "extendsInterfaces": None, "fields": [f.describe() for f in self.field_list],
            "implementedBy": None, "implementsInterfaces": None, "listviewable": None,
            "lookupLayoutable": None, "namedLayoutInfos": [], "networkScopeFieldName": None,
            "recordTypeInfos": [{
                "active": True, "available": True, "defaultRecordTypeMapping": True,
                "developerName": "Master", "master": True, "name": "Master",
                "recordTypeId": "012000000000000AAA",
                "urls": {"layout": f"{base}/describe/layouts/012000000000000AAA"}}],
            "searchLayoutable": True, "sobjectDescribeOption": "FULL", "supportedScopes": [
                {"label": "All " + self.label_plural.lower(), "name": "everything"}],
        })
        result["urls"] = {**result["urls"], "compactLayouts": f"{base}/describe/compactLayouts",
                          "layouts": f"{base}/describe/layouts", "listviews": f"{base}/listviews",
                          "quickActions": f"{base}/quickActions"}
        return result


class Schema:
    """All objects of the org, looked up case-insensitively like Salesforce does."""

    def __init__(self, objects: Iterable[ObjectDef]) -> None:
        self.object_list = list(objects)
        self.objects = {o.name.lower(): o for o in self.object_list}
        self.by_prefix = {o.key_prefix: o for o in self.object_list}

    def object(self, name: str) -> ObjectDef | None:
        return self.objects.get(name.lower())

    def child_relationships(self, parent: ObjectDef) -> list[dict[str, Any]]:
        children = []
        for obj in self.object_list:
            for f in obj.field_list:
                if parent.name in f.reference_to and f.relationship_name:
                    children.append({
                        "cascadeDelete": False, "childSObject": obj.name,
                        "deprecatedAndHidden": False, "field": f.name, "junctionIdListNames": [],
                        "junctionReferenceTo": [],
                        "relationshipName": _plural_relationship(obj, f),
                        "restrictedDelete": False})
        return children

    def global_describe(self, version: str) -> dict[str, Any]:
        return {"encoding": "UTF-8", "maxBatchSize": 200,
                "sobjects": [o.global_describe(version) for o in self.object_list]}


def _plural_relationship(child: ObjectDef, via: FieldDef) -> str | None:
    if via.name in ("CreatedById", "LastModifiedById", "OwnerId"):
        return None
    if child.custom:
        return child.label_plural.replace(" ", "_") + "__r"
    return child.label_plural.replace(" ", "")


# ---------------------------------------------------------------- field declaration helpers

def _id() -> FieldDef:
    return FieldDef("Id", "id", "Record ID", length=18, nillable=False, createable=False,
                    updateable=False)


def _text(name: str, label: str, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, "string", label, length=length, **kw)


def _area(name: str, label: str, length: int = 32000, **kw: Any) -> FieldDef:
    return FieldDef(name, "textarea", label, length=length, **kw)


def _pick(name: str, label: str, values: tuple[str, ...], **kw: Any) -> FieldDef:
    return FieldDef(name, "picklist", label, length=255, picklist=values, **kw)


def _ref(name: str, label: str, to: str, relationship: str, **kw: Any) -> FieldDef:
    return FieldDef(name, "reference", label, length=18, reference_to=(to,),
                    relationship_name=relationship, **kw)


def _num(name: str, label: str, kind: str, precision: int, scale: int, **kw: Any) -> FieldDef:
    return FieldDef(name, kind, label, precision=precision, scale=scale, **kw)


def _system_fields(owner: bool = True, deleted: bool = True) -> list[FieldDef]:
    audit = dict(createable=False, updateable=False)
    fields = []
    if deleted:
        fields.append(FieldDef("IsDeleted", "boolean", "Deleted", nillable=False, **audit))
    if owner:
        fields.append(_ref("OwnerId", "Owner ID", "User", "Owner", nillable=False,
                           createable=True, updateable=True, default_value=None))
    fields += [
        FieldDef("CreatedDate", "datetime", "Created Date", nillable=False, **audit),
        _ref("CreatedById", "Created By ID", "User", "CreatedBy", nillable=False, **audit),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, **audit),
        _ref("LastModifiedById", "Last Modified By ID", "User", "LastModifiedBy", nillable=False,
             **audit),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", nillable=False, **audit),
    ]
    return fields


def _address(prefix: str, label: str) -> list[FieldDef]:
    compound = prefix + "Address"
    parts = [("street", "Street", "textarea", 255), ("city", "City", "string", 40),
             ("state", "State/Province", "string", 80),
             ("postalCode", "Zip/Postal Code", "string", 20),
             ("country", "Country", "string", 80)]
    fields = [FieldDef(prefix + _cap(key), kind, f"{label} {part_label}", length=length,
                       compound_field_name=compound)
              for key, part_label, kind, length in parts]
    fields.append(FieldDef(compound, "address", f"{label} Address", createable=False,
                           updateable=False,
                           components=tuple((key, prefix + _cap(key)) for key, *_ in parts)))
    return fields


def _cap(key: str) -> str:
    return key[0].upper() + key[1:]


INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals",
              "Communications", "Construction", "Consulting", "Education", "Electronics",
              "Energy", "Engineering", "Entertainment", "Finance", "Government", "Healthcare",
              "Insurance", "Manufacturing", "Media", "Retail", "Technology", "Transportation")
ACCOUNT_TYPES = ("Prospect", "Customer - Direct", "Customer - Channel",
                 "Channel Partner / Reseller", "Installation Partner", "Technology Partner",
                 "Other")
RATINGS = ("Hot", "Warm", "Cold")
STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote",
          "Negotiation/Review", "Closed Won", "Closed Lost")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                 "Closed - Not Converted")
CASE_STATUSES = ("New", "Working", "Escalated", "Closed")
PRIORITIES = ("High", "Medium", "Low")
ORIGINS = ("Phone", "Email", "Web")
INVOICE_STATUSES = ("Draft", "Sent", "Paid", "Void")

ACCOUNT = ObjectDef("Account", "Account", "Accounts", "001", False, [
    _id(), *_system_fields(owner=False),
    _text("Name", "Account Name", nillable=False, name_field=True),
    _pick("Type", "Account Type", ACCOUNT_TYPES),
    _ref("ParentId", "Parent Account ID", "Account", "Parent"),
    *_address("Billing", "Billing"),
    FieldDef("Phone", "phone", "Account Phone", length=40),
    FieldDef("Website", "url", "Website", length=255),
    _pick("Industry", "Industry", INDUSTRIES),
    _num("AnnualRevenue", "Annual Revenue", "currency", 18, 0),
    FieldDef("NumberOfEmployees", "int", "Employees", digits=8),
    _area("Description", "Account Description"),
    _pick("Rating", "Account Rating", RATINGS),
    _ref("OwnerId", "Owner ID", "User", "Owner", nillable=False, default_value=None),
    _text("External_Id__c", "External Id", 40, custom=True, external_id=True, unique=True),
])

CONTACT = ObjectDef("Contact", "Contact", "Contacts", "003", False, [
    _id(), *_system_fields(),
    _ref("AccountId", "Account ID", "Account", "Account"),
    _text("FirstName", "First Name", 40, compound_field_name="Name"),
    _text("LastName", "Last Name", 80, nillable=False, compound_field_name="Name"),
    _text("Name", "Full Name", 121, createable=False, updateable=False, name_field=True),
    FieldDef("Email", "email", "Email", length=80),
    FieldDef("Phone", "phone", "Business Phone", length=40),
    _text("Title", "Title", 128),
    FieldDef("Birthdate", "date", "Birthdate"),
    FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False,
             default_value="false"),
    _ref("ReportsToId", "Reports To ID", "Contact", "ReportsTo"),
    _area("Description", "Contact Description"),
    _text("External_Id__c", "External Id", 40, custom=True, external_id=True, unique=True),
    # An external id that is NOT unique (allowed in Salesforce): upsert/get by it can match
    # several rows and answer 300 Multiple Choices.
    _text("Legacy_Id__c", "Legacy Id", 40, custom=True, external_id=True),
    # A cross-object formula: follows a rename of the parent Account at once, without
    # touching this Contact's SystemModstamp (formula freshness for replication).
    _text("Account_Name__c", "Account Name", 255, custom=True, calculated=True,
          createable=False, updateable=False, formula=("AccountId", "Name")),
])

OPPORTUNITY = ObjectDef("Opportunity", "Opportunity", "Opportunities", "006", False, [
    _id(), *_system_fields(),
    _ref("AccountId", "Account ID", "Account", "Account"),
    _text("Name", "Name", 120, nillable=False, name_field=True),
    _pick("StageName", "Stage", STAGES, nillable=False),
    _num("Amount", "Amount", "currency", 18, 2),
    _num("Probability", "Probability (%)", "percent", 3, 0),
    FieldDef("CloseDate", "date", "Close Date", nillable=False),
    FieldDef("IsWon", "boolean", "Won", nillable=False, createable=False, updateable=False,
             calculated=False),
    _area("Description", "Description"),
])

LEAD = ObjectDef("Lead", "Lead", "Leads", "00Q", False, [
    _id(), *_system_fields(),
    _text("FirstName", "First Name", 40, compound_field_name="Name"),
    _text("LastName", "Last Name", 80, nillable=False, compound_field_name="Name"),
    _text("Name", "Full Name", 121, createable=False, updateable=False, name_field=True),
    _text("Company", "Company", 255, nillable=False),
    _pick("Status", "Lead Status", LEAD_STATUSES, nillable=False,
          default_value="Open - Not Contacted"),
    FieldDef("Email", "email", "Email", length=80),
    FieldDef("Phone", "phone", "Phone", length=40),
    _pick("Rating", "Rating", RATINGS),
    _num("AnnualRevenue", "Annual Revenue", "currency", 18, 0),
    FieldDef("NumberOfEmployees", "int", "Employees", digits=8),
])

CASE = ObjectDef("Case", "Case", "Cases", "500", False, [
    _id(), *_system_fields(),
    _text("CaseNumber", "Case Number", 30, createable=False, updateable=False, nillable=False,
          auto_number=True, name_field=True),
    _ref("AccountId", "Account ID", "Account", "Account"),
    _ref("ContactId", "Contact ID", "Contact", "Contact"),
    _text("Subject", "Subject", 255),
    _area("Description", "Description"),
    _pick("Status", "Status", CASE_STATUSES, default_value="New"),
    _pick("Priority", "Priority", PRIORITIES, default_value="Medium"),
    _pick("Origin", "Case Origin", ORIGINS),
    FieldDef("IsClosed", "boolean", "Closed", nillable=False, createable=False,
             updateable=False),
])

USER = ObjectDef("User", "User", "Users", USER_KEY_PREFIX, False, [
    _id(), *_system_fields(owner=False, deleted=False),
    _text("Username", "Username", 80, nillable=False, unique=True),
    _text("FirstName", "First Name", 40, compound_field_name="Name"),
    _text("LastName", "Last Name", 80, nillable=False, compound_field_name="Name"),
    _text("Name", "Full Name", 121, createable=False, updateable=False, name_field=True),
    FieldDef("Email", "email", "Email", length=128, nillable=False),
    _text("Alias", "Alias", 8, nillable=False),
    FieldDef("IsActive", "boolean", "Active", nillable=False, default_value="true"),
    _ref("ManagerId", "Manager ID", "User", "Manager"),
])

INVOICE = ObjectDef("Invoice__c", "Invoice", "Invoices", "a0X", True, [
    _id(), *_system_fields(),
    _text("Name", "Invoice Name", 80, nillable=False, name_field=True),
    _ref("Account__c", "Account", "Account", "Account__r", custom=True),
    _ref("Contact__c", "Contact", "Contact", "Contact__r", custom=True),
    _text("External_Id__c", "External Id", 40, custom=True, external_id=True, unique=True),
    _pick("Status__c", "Status", INVOICE_STATUSES, custom=True, restricted_picklist=True),
    _num("Amount__c", "Amount", "currency", 16, 2, custom=True),
    _num("Tax_Rate__c", "Tax Rate", "percent", 5, 2, custom=True),
    _num("Quantity__c", "Quantity", "double", 18, 0, custom=True),
    FieldDef("Due_Date__c", "date", "Due Date", custom=True),
    FieldDef("Issued_At__c", "datetime", "Issued At", custom=True),
    FieldDef("Paid__c", "boolean", "Paid", nillable=False, custom=True, default_value="false"),
    _area("Notes__c", "Notes", 32768, custom=True),
    FieldDef("Portal_Url__c", "url", "Portal URL", length=255, custom=True),
    FieldDef("Billing_Email__c", "email", "Billing Email", length=80, custom=True),
    FieldDef("Billing_Phone__c", "phone", "Billing Phone", length=40, custom=True),
    _num("Location__Latitude__s", "Location (Latitude)", "double", 9, 6, custom=True,
         compound_field_name="Location__c"),
    _num("Location__Longitude__s", "Location (Longitude)", "double", 9, 6, custom=True,
         compound_field_name="Location__c"),
    FieldDef("Location__c", "location", "Location", custom=True, createable=False,
             updateable=False, precision=0, scale=6,
             components=(("latitude", "Location__Latitude__s"),
                         ("longitude", "Location__Longitude__s"))),
])

_READ_ONLY = dict(createable=False, updateable=False)
# Like Salesforce's, the Organization object is queryable but not replicateable.
ORGANIZATION = ObjectDef("Organization", "Organization", "Organizations", "00D", False, [
    _id(), *_system_fields(owner=False, deleted=False),
    _text("Name", "Name", 80, nillable=False, name_field=True, **_READ_ONLY),
    FieldDef("IsSandbox", "boolean", "Is Sandbox", nillable=False, **_READ_ONLY),
    _text("OrganizationType", "Edition", 40, **_READ_ONLY),
    _text("InstanceName", "Instance Name", 5, **_READ_ONLY),
    _text("TimeZoneSidKey", "Default Time Zone", 40, **_READ_ONLY),
    _text("LanguageLocaleKey", "Default Language", 40, **_READ_ONLY),
], replicateable=False)
# (`SELECT IsSandbox FROM Organization LIMIT 1` is simple-salesforce's is_sandbox().)

SCHEMA = Schema([ACCOUNT, CONTACT, OPPORTUNITY, LEAD, CASE, USER, INVOICE, ORGANIZATION])
SCHEMA_VERSION = 6  # bump when objects/fields/generated data change (cached DBs rebuild)
