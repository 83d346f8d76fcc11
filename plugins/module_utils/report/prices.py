# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The dated, sourced price table (roles/report/files/aws-prices.yml) and lookups in it.

A price is found for (region, price id), then for ("global", price id). A
price that is not there is never guessed: ``lookup`` returns ``None`` and the
reason, and the cost line says "not priced".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from decimal import Decimal

GLOBAL = "global"


class PriceTableError(Exception):
    """The price table cannot be used (missing, malformed, or a price without a source)."""


class Price:
    """One unit price with where it comes from."""

    def __init__(self, price_id, region, usd, unit, source, *, quote="", derived=""):
        self.price_id = price_id
        self.region = region
        self.usd = Decimal(str(usd))
        self.unit = unit
        self.source = source
        self.quote = quote
        self.derived = derived

    def as_dict(self):
        return {
            "price_id": self.price_id,
            "region": self.region,
            "usd": str(self.usd),
            "unit": self.unit,
            "source": self.source,
            "quote": self.quote,
            "derived": self.derived,
        }


class PriceTable:
    """The table as loaded: ``sources`` by id and ``prices`` by region and price id."""

    def __init__(self, data):
        if not isinstance(data, dict) or not isinstance(data.get("prices"), dict) or not isinstance(data.get("sources"), dict):
            raise PriceTableError("the price table needs the keys 'as_of', 'sources' and 'prices'")
        self.as_of = str(data.get("as_of", ""))
        self.currency = str(data.get("currency", "USD"))
        self.sources = {}
        for key, source in sorted(data["sources"].items()):
            if not isinstance(source, dict) or not source.get("url") or not source.get("read"):
                raise PriceTableError("source {0!r} needs a url and the date it was read".format(key))
            self.sources[key] = {
                "id": key,
                "title": str(source.get("title", key)),
                "url": str(source["url"]),
                "published": str(source.get("published", "")),
                "read": str(source["read"]),
                "note": str(source.get("note", "")),
            }
        self.prices = {}
        for region, entries in sorted(data["prices"].items()):
            for price_id, entry in sorted((entries or {}).items()):
                if not isinstance(entry, dict) or "usd" not in entry or not entry.get("source"):
                    raise PriceTableError("price {0} in {1} needs 'usd' and 'source'".format(price_id, region))
                if entry["source"] not in self.sources:
                    raise PriceTableError("price {0} in {1} names the unknown source {2!r}".format(price_id, region, entry["source"]))
                self.prices[(region, price_id)] = Price(
                    price_id,
                    region,
                    entry["usd"],
                    str(entry.get("unit", "")),
                    entry["source"],
                    quote=str(entry.get("quote", "")),
                    derived=str(entry.get("derived", "")),
                )
        self.overrides = {}

    @classmethod
    def load(cls, path):
        try:
            import yaml
        except ImportError as e:  # pragma: no cover - PyYAML comes with ansible-core
            raise PriceTableError("PyYAML is needed to read the price table") from e
        try:
            with open(path) as handle:
                data = yaml.safe_load(handle)
        except (IOError, OSError) as e:
            raise PriceTableError("cannot read the price table {0}: {1}".format(path, e)) from e
        except yaml.YAMLError as e:
            raise PriceTableError("the price table {0} is not valid YAML: {1}".format(path, e)) from e
        return cls(data)

    def override(self, price, source):
        """Use ``price`` (from the Price List API) instead of the table's for this run."""
        self.sources.setdefault(source["id"], source)
        self.overrides[(price.region, price.price_id)] = price

    def lookup(self, region, price_id):
        """``(Price, None)`` or ``(None, reason)``."""
        for key in ((region, price_id), (GLOBAL, price_id)):
            if key in self.overrides:
                return self.overrides[key], None
            if key in self.prices:
                return self.prices[key], None
        regions = sorted(r for (r, p) in self.prices if p == price_id)
        if regions:
            return None, "the price table has {0} for {1} only, not for {2}".format(price_id, ", ".join(regions), region)
        return None, "the price table has no price {0} (no sourced price was found)".format(price_id)
