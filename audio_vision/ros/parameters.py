# SPDX-License-Identifier: Apache-2.0
"""Node parameters declared with descriptors (ranges, read-only reasons) and checked alike at start-up and at
run time (``Param``, ``declare_parameters``, ``live_parameters``)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

from audio_vision.ros.lifecycle import StartupError


READ_ONLY_WHY = 'used to build the node at start-up (publishers, model, buffers); restart the node to change it'


@dataclass(frozen=True)
class Param:
    """A parameter declaration: default value (its type is the parameter's type) and descriptor fields."""

    name: str
    default: Any
    description: str
    range: tuple | None = None        # inclusive (from, to) for int/float parameters
    choices: tuple | None = None      # allowed values of a string parameter
    read_only: bool = True
    why: str = ''                     # why a read-only parameter cannot change at run time ('' = generic)

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(name=self.name, description=self.description, read_only=self.read_only)
        constraints = ['one of: ' + ', '.join(repr(c) for c in self.choices)] if self.choices else []
        constraints.append(f'read-only: {self.why or READ_ONLY_WHY}' if self.read_only
                           else 'can be changed at run time (ros2 param set)')
        d.additional_constraints = '; '.join(constraints)
        if self.range is not None:
            lo, hi = self.range
            if isinstance(self.default, float):
                d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
            else:
                d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        return d


def declare_parameters(node, params: list[Param]) -> dict[str, Any]:
    """Declare ``params`` on ``node`` (overrides come from YAML / the command line) and return their
    values; any invalid value raises :class:`StartupError` with one readable line."""
    values = {}
    for p in params:
        try:
            values[p.name] = node.declare_parameter(p.name, p.default, p.descriptor()).value
        except InvalidParameterTypeException as exc:
            got = re.search(r"to '(.*)' of type '(\w+)'", str(exc))
            hint = ' (write e.g. 1.0, not 1)' if isinstance(p.default, float) else ''
            raise StartupError(f"parameter '{p.name}' must be a {type(p.default).__name__}"
                               + (f", got {got.group(2).lower()} {got.group(1)!r}" if got else '') + hint) from None
        except InvalidParameterValueException as exc:
            got = re.search(r'value: (.*?)(?::|$)', str(exc))
            raise StartupError(f"parameter '{p.name}' = {got.group(1) if got else '?'} is out of range "
                               f'[{p.range[0]}, {p.range[1]}]') from None
        check_value(p, values[p.name])
    return values


def check_value(p: Param, value) -> Any:
    """The checks of a parameter value beyond rclpy's own (type and range, enforced by the descriptor):
    the same at start-up and at run time. Raises :class:`StartupError` with one readable line."""
    if p.choices and value not in p.choices:
        raise StartupError(f"parameter '{p.name}' = {value!r} is not one of {list(p.choices)}")
    return value


def live_parameters(node, params: list[Param], apply: Callable[[dict[str, Any]], None]) -> None:
    """Accept run-time changes of the parameters of ``params`` that are not read-only: each new value is
    validated as at start-up (type and range by rclpy from the descriptor, the rest by :func:`check_value`);
    if all are valid, ``apply({name: value})`` makes them effective, else the whole set is refused with the
    reason. Read-only parameters are refused by rclpy itself (their descriptor says why)."""
    from rcl_interfaces.msg import SetParametersResult
    by_name = {p.name: p for p in params}

    def on_set(changes) -> SetParametersResult:
        values = {}
        for parameter in changes:
            p = by_name.get(parameter.name)
            if p is None:          # rclpy's own (use_sim_time, ...)
                continue
            if p.read_only:        # normally refused by rclpy before this callback
                return SetParametersResult(successful=False,
                                           reason=f"parameter '{p.name}' is read-only: {p.why or READ_ONLY_WHY}")
            try:
                values[p.name] = check_value(p, parameter.value)
            except StartupError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        if values:
            apply(values)
            node.get_logger().info('parameters changed: ' + ', '.join(f'{k}={v!r}' for k, v in values.items()))
        return SetParametersResult(successful=True)
    node.add_on_set_parameters_callback(on_set)
