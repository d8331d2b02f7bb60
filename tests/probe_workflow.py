"""A workflow with a typed signal, in a module of its own (the sandbox re-imports it; it imports little)."""

from temporalio import workflow


@workflow.defn(name="TypedSignalProbe")
class TypedSignalProbe:
    """The SDK drops a signal it cannot convert to `poke`'s type before the handler runs."""

    def __init__(self) -> None:
        self.pokes = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.pokes > 0)

    @workflow.signal
    def poke(self, count: int) -> None:
        self.pokes += count
