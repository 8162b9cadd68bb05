"""Imports every model module so the metadata is complete for Alembic and the tests."""

from portal.catalog import models as catalog_models  # noqa: F401
from portal.documents import models as document_models  # noqa: F401
from portal.invoices import freeze  # noqa: F401  (the ORM guard on issued documents)
from portal.invoices import models as invoice_models  # noqa: F401
from portal.ledger import models as ledger_models  # noqa: F401
from portal.notifications import models as notification_models  # noqa: F401
from portal.ops import models as ops_models  # noqa: F401
from portal.payments import models as payment_models  # noqa: F401
from portal.tenancy import models as tenancy_models  # noqa: F401
from portal.usage import models as usage_models  # noqa: F401
