"""One module per kind of notification; `gateway.notify.planner` dispatches to them."""
