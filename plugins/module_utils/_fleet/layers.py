# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Layered configuration data merged by name (debops style).

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports, so the test double and CLIs can use it too.
"""

from __future__ import annotations

import copy


class LayerError(ValueError):
    """A layer item is malformed; the message names the layer and the fix."""


def merge_by_name(*layers, key="name", layer_names=None):
    """Merge lists of dicts by ``key``; later layers win.

    Each layer is a list of dicts (``None`` counts as empty), each name at most once per layer. An item whose
    ``state`` is ``absent`` removes the name merged so far. Items that share a
    name are merged shallowly (keys of the later item replace earlier ones).
    The first position of a name is kept, so output order is stable.
    The ``state`` key is dropped from the result.
    """
    merged = {}
    order = []
    for index, layer in enumerate(layers):
        label = layer_names[index] if layer_names and index < len(layer_names) else "layer %d" % (index + 1)
        if layer is None:
            continue
        if not isinstance(layer, (list, tuple)):
            raise LayerError("%s must be a list of dicts with a '%s' key, got %s" % (label, key, type(layer).__name__))
        seen = set()
        for position, item in enumerate(layer):
            if not isinstance(item, dict) or key not in item:
                raise LayerError(
                    "%s item %d must be a dict with a '%s' key, got %r" % (label, position, key, item)
                )
            name = item[key]
            # Within one list a repeated name is a mistake, not an override (it silently merged two items).
            if name in seen:
                raise LayerError(
                    "%s names %r twice; one list holds each %s once (put an override in a later layer)"
                    % (label, name, key)
                )
            seen.add(name)
            state = item.get("state", "present")
            if state not in ("present", "absent"):
                raise LayerError(
                    "%s item %r: state must be 'present' or 'absent', got %r" % (label, name, state)
                )
            if state == "absent":
                merged.pop(name, None)
                continue
            if name in merged:
                merged[name].update(copy.deepcopy(item))
            else:
                merged[name] = copy.deepcopy(item)
                if name not in order:
                    order.append(name)
    result = []
    for name in order:
        if name in merged:
            item = merged[name]
            item.pop("state", None)
            result.append(item)
    return result
