# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The platform report: what exists (model), what it costs (cost), how it looks (render).

``prices`` reads the dated price table; ``model`` turns the tiers' live state
into the architecture (nodes, edges, clusters); ``cost`` prices it under the
inventory's assumptions; ``render`` draws the diagram with the ``diagrams``
package (Graphviz) and writes the Markdown and HTML pages. Everything but
``render`` and the Price List lookup is pure and unit-tested.
"""
