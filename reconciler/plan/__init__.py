"""Plans: the desired specs against the applied state, as a value.

    normalize        canonical specs (what is compared and stored)
    fields, graph    field-level differences; who uses whom
    diff             build_plan: desired state + state snapshot -> Plan
    model            the Plan value and its canonical JSON
    secrets          which fields are secret, masking, rotation digests
    render_*         text, JSON and pull-request markdown
    apply            the named steps apply runs
    service          open the state and make a plan for a loaded project

Nothing here prints. Building a plan writes nothing anywhere.
"""
