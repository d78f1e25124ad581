"""Entity schemas of the fake Autotask server: wire field names and types, read-only and required fields,
the tenant's picklists and UDF definitions, and Autotask's date format.

Field names come from Autotask's REST swagger (as indexed in shared/specs/psa/autotask-rest-index.json,
first letter lower-cased as on the wire); tests/connectors/autotask/test_spec_names.py checks them against
the index. Types: i int, f float, b bool, d datetime, s string, u userDefinedFields list, x base64 bytes.
Picklist ids are tenant data in Autotask (only ticket status 5 = Complete is a system value): the seed
below uses realistic but arbitrary ids, and tests may replace them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_TICKETS = (
    "apiVendorID:i assignedResourceID:i assignedResourceRoleID:i billingCodeID:i changeApprovalBoard:i "
    "changeApprovalStatus:i changeApprovalType:i changeInfoField1:s changeInfoField2:s changeInfoField3:s "
    "changeInfoField4:s changeInfoField5:s companyID:i companyLocationID:i completedByResourceID:i completedDate:d "
    "configurationItemID:i contactID:i contractID:i contractServiceBundleID:i contractServiceID:i createDate:d "
    "createdByContactID:i creatorResourceID:i creatorType:i currentServiceThermometerRating:i description:s "
    "dueDateTime:d estimatedHours:f externalID:s firstResponseAssignedResourceID:i firstResponseDateTime:d "
    "firstResponseDueDateTime:d firstResponseInitiatingResourceID:i hoursToBeScheduled:f id:i "
    "impersonatorCreatorResourceID:i issueType:i lastActivityDate:d lastActivityPersonType:i "
    "lastActivityResourceID:i lastCustomerNotificationDateTime:d lastCustomerVisibleActivityDateTime:d "
    "lastTrackedModificationDateTime:d monitorID:i monitorTypeID:i opportunityID:i "
    "organizationalLevelAssociationID:i previousServiceThermometerRating:i priority:i problemTicketId:i projectID:i "
    "purchaseOrderNumber:s queueID:i resolution:s resolutionPlanDateTime:d resolutionPlanDueDateTime:d "
    "resolvedDateTime:d resolvedDueDateTime:d rmaStatus:i rmaType:i rmmAlertID:s serviceLevelAgreementHasBeenMet:b "
    "serviceLevelAgreementID:i serviceLevelAgreementPausedNextEventHours:f serviceThermometerTemperature:i source:i "
    "status:i subIssueType:i ticketCategory:i ticketNumber:s ticketType:i title:s userDefinedFields:u")
_NOTES = ("createDateTime:d createdByContactID:i creatorResourceID:i description:s id:i "
          "impersonatorCreatorResourceID:i impersonatorUpdaterResourceID:i lastActivityDate:d noteType:i publish:i "
          "ticketID:i title:s")
_TIME = (
    "billingApprovalDateTime:d billingApprovalLevelMostRecent:i billingApprovalResourceID:i billingCodeID:i "
    "contractID:i contractServiceBundleID:i contractServiceID:i createDateTime:d creatorUserID:i dateWorked:d "
    "endDateTime:d hoursToBill:f hoursWorked:f id:i impersonatorCreatorResourceID:i impersonatorUpdaterResourceID:i "
    "internalBillingCodeID:i internalNotes:s isNonBillable:b lastModifiedDateTime:d lastModifiedUserID:i "
    "offsetHours:f resourceID:i roleID:i showOnInvoice:b startDateTime:d summaryNotes:s taskID:i ticketID:i "
    "timeEntryType:i")
_ATTACHMENTS = ("attachDate:d attachedByContactID:i attachedByResourceID:i attachmentType:s contentType:s "
                "creatorType:i data:x fileSize:f fullPath:s id:i impersonatorCreatorResourceID:i isTaskAttachment:b "
                "opportunityID:i parentID:i parentType:i publish:i title:s")
_COMPANIES = (
    "additionalAddressInformation:s address1:s address2:s alternatePhone1:s alternatePhone2:s apiVendorID:i "
    "assetValue:f billToAdditionalAddressInformation:s billToAddressToUse:i billToAttention:s billToCity:s "
    "billToCompanyLocationID:i billToCountryID:i billToState:s billToZipCode:s billingAddress1:s billingAddress2:s "
    "city:s classification:i companyName:s companyNumber:s companyType:i competitorID:i countryID:i createDate:d "
    "createdByResourceID:i currencyID:i fax:s id:i impersonatorCreatorResourceID:i invoiceEmailMessageID:i "
    "invoiceMethod:i invoiceNonContractItemsToParentCompany:b invoiceTemplateID:i isActive:b isClientPortalActive:b "
    "isEnabledForComanaged:b isTaskFireActive:b isTaxExempt:b lastActivityDate:d lastTrackedModifiedDateTime:d "
    "marketSegmentID:i ownerResourceID:i parentCompanyID:i phone:s postalCode:s purchaseOrderTemplateID:i "
    "quoteEmailMessageID:i quoteTemplateID:i sicCode:s state:s stockMarket:s stockSymbol:s surveyCompanyRating:f "
    "taxID:s taxRegionID:i territoryID:i userDefinedFields:u webAddress:s")
_CONTACTS = (
    "additionalAddressInformation:s addressLine:s addressLine1:s alternatePhone:s apiVendorID:i "
    "bulkEmailOptOutTime:d city:s companyID:i companyLocationID:i countryID:i createDate:d emailAddress:s "
    "emailAddress2:s emailAddress3:s extension:s externalID:s facebookUrl:s faxNumber:s firstName:s id:i "
    "impersonatorCreatorResourceID:i isActive:i isOptedOutFromBulkEmail:b lastActivityDate:d lastModifiedDate:d "
    "lastName:s linkedInUrl:s middleInitial:s mobilePhone:s namePrefix:i nameSuffix:i note:s phone:s "
    "primaryContact:b receivesEmailNotifications:b roomNumber:s solicitationOptOut:b solicitationOptOutTime:d "
    "state:s surveyOptOut:b title:s twitterUrl:s userDefinedFields:u zipCode:s")
_RESOURCES = (
    "accountingReferenceID:s dateFormat:s defaultServiceDeskRoleID:i email:s email2:s email3:s emailTypeCode:s "
    "emailTypeCode2:s emailTypeCode3:s firstName:s gender:s greeting:i hireDate:d homePhone:s id:i initials:s "
    "internalCost:f isActive:b lastName:s licenseType:i locationID:i middleName:s mobilePhone:s numberFormat:s "
    "officeExtension:s officePhone:s payrollType:i resourceType:s suffix:i surveyResourceRating:f timeFormat:s "
    "title:s travelAvailabilityPct:s userName:s userType:i")
_ROLES = "id:i isActive:b isDefault:b resourceID:i roleID:i"
_CONFIGURATION_ITEMS = ("companyID:i configurationItemType:i contactID:i createDate:d id:i isActive:b "
                        "lastModifiedTime:d productID:i referenceNumber:s referenceTitle:s rmmDeviceAuditHostname:s "
                        "serialNumber:s")
_DELETED = "deletedByResourceID:i deletedDateTime:d id:i ticketID:i ticketNumber:s ticketTitle:s"

DATA_TYPES = {"i": "integer", "f": "double", "b": "boolean", "d": "datetime", "s": "string", "u": "userDefinedFields",
              "x": "base64"}


@dataclass(frozen=True)
class EntitySpec:
    """What the fake knows about one entity: fields, what a write may set, what it must carry."""

    name: str  # the path name: "Tickets"
    label: str  # entityInformation name: "Ticket"
    fields: dict[str, str]
    read_only: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    lengths: dict[str, int] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # field -> entity path name
    udfs: bool = False
    can_create: bool = False
    can_update: bool = False
    can_delete: bool = False

    def canonical(self, name: str) -> str | None:
        """The wire name for a field name given in any letter case (Autotask binds case-insensitively)."""
        lowered = name.lower()
        return next((f for f in self.fields if f.lower() == lowered), None)


def _fields(spec: str, udfs: bool = False) -> dict[str, str]:
    out = dict(part.split(":") for part in spec.split())
    if not udfs:
        out.pop("userDefinedFields", None)
    return out


_STAMPS = frozenset({"id", "createDate", "createDateTime", "lastActivityDate", "lastModifiedDate",
                     "lastModifiedDateTime", "lastTrackedModificationDateTime", "lastTrackedModifiedDateTime",
                     "creatorResourceID", "impersonatorCreatorResourceID", "impersonatorUpdaterResourceID"})

SPECS: dict[str, EntitySpec] = {s.name: s for s in (
    EntitySpec("Tickets", "Ticket", _fields(_TICKETS, udfs=True), udfs=True, can_create=True, can_update=True,
               read_only=_STAMPS | {"ticketNumber", "completedDate", "completedByResourceID", "creatorType",
                                    "firstResponseDateTime", "lastActivityPersonType", "lastActivityResourceID",
                                    "lastCustomerNotificationDateTime", "lastCustomerVisibleActivityDateTime",
                                    "createdByContactID"},
               required=frozenset({"companyID", "title", "status", "priority"}),
               lengths={"title": 255, "description": 8000, "externalID": 50, "resolution": 32000},
               references={"companyID": "Companies", "contactID": "Contacts", "assignedResourceID": "Resources"}),
    EntitySpec("TicketNotes", "TicketNote", _fields(_NOTES), can_create=True, can_update=True,
               read_only=_STAMPS, required=frozenset({"description", "noteType", "publish", "ticketID"}),
               lengths={"title": 250, "description": 32000}, references={"ticketID": "Tickets"}),
    EntitySpec("TimeEntries", "TimeEntry", _fields(_TIME), can_create=True, can_update=True, can_delete=True,
               read_only=_STAMPS | {"hoursToBill", "creatorUserID", "lastModifiedUserID", "billingApprovalDateTime",
                                    "billingApprovalLevelMostRecent", "billingApprovalResourceID"},
               required=frozenset({"resourceID", "summaryNotes"}),
               lengths={"summaryNotes": 8000, "internalNotes": 8000},
               references={"ticketID": "Tickets", "resourceID": "Resources"}),
    EntitySpec("TicketAttachments", "TicketAttachment", _fields(_ATTACHMENTS), can_create=True, can_delete=True,
               read_only=_STAMPS | {"attachDate", "attachedByResourceID", "fileSize", "contentType", "creatorType",
                                    "parentType", "opportunityID"},
               required=frozenset({"attachmentType", "fullPath", "publish", "title"}),
               lengths={"title": 255, "fullPath": 255}),
    EntitySpec("Companies", "Company", _fields(_COMPANIES, udfs=True), udfs=True, can_create=True, can_update=True,
               read_only=_STAMPS | {"createdByResourceID"},
               required=frozenset({"companyName", "companyType", "ownerResourceID", "phone"}),
               lengths={"companyName": 100, "companyNumber": 50, "phone": 25}),
    EntitySpec("Contacts", "Contact", _fields(_CONTACTS, udfs=True), udfs=True, can_create=True, can_update=True,
               read_only=_STAMPS, required=frozenset({"firstName", "lastName", "isActive", "companyID"}),
               lengths={"firstName": 50, "lastName": 50, "emailAddress": 254, "externalID": 50},
               references={"companyID": "Companies"}),
    EntitySpec("Resources", "Resource", _fields(_RESOURCES), can_update=True,
               read_only=_STAMPS | {"userName", "licenseType", "userType", "resourceType"}),
    EntitySpec("ResourceServiceDeskRoles", "ResourceServiceDeskRole", _fields(_ROLES)),
    EntitySpec("DeletedTicketLogs", "DeletedTicketLog", _fields(_DELETED)),
    EntitySpec("ConfigurationItems", "ConfigurationItem", _fields(_CONFIGURATION_ITEMS)),
)}


# ---------------------------------------------------------------- tenant data: picklists and UDFs


@dataclass
class Pick:
    value: int
    label: str
    sort: int = 0
    default: bool = False
    active: bool = True
    system: bool = False
    parent: int | None = None

    def wire(self) -> dict[str, Any]:
        """As Autotask lists it in entityInformation/fields: values are strings there."""
        return {"value": str(self.value), "label": self.label, "isDefaultValue": self.default,
                "sortOrder": self.sort, "parentValue": "" if self.parent is None else str(self.parent),
                "isActive": self.active, "isSystem": self.system}


def seed_picklists() -> dict[str, dict[str, list[Pick]]]:
    """A plausible tenant: entity -> field -> values (ids deliberately not 1..n, labels tenant-specific)."""
    return {
        "Tickets": {
            "status": [Pick(1, "New", 1, default=True, system=True), Pick(8, "In Progress", 2),
                       Pick(7, "Waiting Customer", 3), Pick(12, "Waiting Materials", 4, active=False),
                       Pick(5, "Complete", 9, system=True)],
            "priority": [Pick(4, "Critical", 1), Pick(1, "High", 2), Pick(2, "Medium", 3, default=True),
                         Pick(3, "Low", 4)],
            "queueID": [Pick(29682833, "Level I Support", 1, default=True), Pick(29682969, "Level II Support", 2),
                        Pick(8, "Monitoring Alert", 3), Pick(6, "Post Sale", 4, active=False)],
            "ticketType": [Pick(1, "Service Request", 1, default=True), Pick(2, "Incident", 2),
                           Pick(3, "Problem", 3), Pick(4, "Change Request", 4), Pick(5, "Alert", 5)],
            "issueType": [Pick(11, "Hardware", 1), Pick(12, "Software", 2)],
            "subIssueType": [Pick(101, "Printer", 1, parent=11), Pick(102, "Laptop", 2, parent=11),
                             Pick(201, "E-mail", 1, parent=12), Pick(202, "Office", 2, parent=12)],
            "source": [Pick(2, "Phone", 1), Pick(4, "E-mail", 2), Pick(6, "Client Portal", 3),
                       Pick(8, "Monitoring Alert", 4), Pick(11, "Chat", 5, default=True)],
            "ticketCategory": [Pick(3, "Standard", 1, default=True), Pick(4, "RMM Alert", 2)],
        },
        "TicketNotes": {
            "noteType": [Pick(1, "Task Summary", 1), Pick(2, "Task Detail", 2, default=True),
                         Pick(3, "Task Notes", 3), Pick(13, "Workflow Rule Note", 9, system=True),
                         Pick(99, "RMM Note", 10)],
            "publish": [Pick(1, "All Autotask Users", 1, default=True), Pick(2, "Internal Users Only", 2),
                        Pick(4, "Internal & Co-Managed", 3)],
        },
        "TicketAttachments": {
            "publish": [Pick(1, "All Autotask Users", 1, default=True), Pick(2, "Internal Users Only", 2)],
        },
        "TimeEntries": {"timeEntryType": [Pick(2, "Ticket", 1, default=True), Pick(6, "Task", 2)]},
        "Companies": {"companyType": [Pick(1, "Customer", 1, default=True), Pick(2, "Lead", 2),
                                      Pick(3, "Prospect", 3), Pick(5, "Vendor", 4), Pick(7, "Partner", 5)]},
    }


@dataclass
class Udf:
    name: str
    label: str
    data_type: str = "string"
    length: int = 100
    required: bool = False
    visible_to_portal: bool = False
    read_only: bool = False  # computed by the tenant (e.g. a formula UDF): listed with isReadOnly


def seed_udfs() -> dict[str, list[Udf]]:
    """UDF definitions per entity (only Tickets, Companies and Contacts carry UDFs here)."""
    return {"Tickets": [Udf("Deskbridge Ref", "Deskbridge Ref", length=64), Udf("Customer PO", "Customer PO",
                                                                              visible_to_portal=True)],
            "Companies": [Udf("Contract Tier", "Contract Tier")], "Contacts": []}


# ---------------------------------------------------------------- dates


def fmt(dt: datetime) -> str:
    """Autotask's UTC format: fraction digits trimmed like .NET (`…:05.25Z`, `…:05Z`)."""
    dt = dt.astimezone(UTC)
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def fmt_date(dt: datetime) -> str:
    """A date-only Autotask field (dateWorked): midnight UTC."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT00:00:00Z")


def parse(value: Any) -> datetime | None:
    """An Autotask date string (naive read as UTC); None when absent or garbled."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
