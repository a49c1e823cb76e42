# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 2136 publishing with TSIG, by concern (PRIVATE to the collection).

``values``    wanted records, TXT splitting, errors      ``transport`` TSIG queries, AXFR, UPDATE over TCP
``zones``     zone discovery and reading the RRsets      ``registry``  the ownership registry in each zone
``plan``      what to write (ownership, shared TXT)      ``apply``     one guarded UPDATE per zone
``sync``      the flow used by the ``dns_records`` module
"""
