# Nothing to change in place: the resource's real work happens on create (and on replacement,
# which the inputs that matter trigger). Used as `update` where re-running create would be wrong.
:
