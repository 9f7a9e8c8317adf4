"""The lab's Pulumi components, one concept per module."""
