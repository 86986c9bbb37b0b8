from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404

from chat.models import PASSED, WITHHELD_ACTIONS, Conversation, Message, ToolRun, seats_prefetch
from chat.tree import Node, Tree


def get_conversation_for_user(user, pk: int) -> Conversation:
    """The only way to fetch a conversation: someone else's id is a 404."""
    return get_object_or_404(Conversation.objects.for_user(user).with_figures(), pk=pk)


async def aget_conversation_for_user(user, pk: int) -> Conversation | None:
    if not user.is_authenticated:
        return None
    return await Conversation.objects.for_user(user).select_related("persona").filter(pk=pk).afirst()


def get_message_in(conversation: Conversation, pk: int) -> Message:
    try:
        return conversation.messages.get(pk=pk)
    except Message.DoesNotExist:
        raise Http404 from None


def guard_withheld(message: Message) -> bool:
    """A reply the guard refused or steered, or a user message that got one."""
    if message.role == Message.Role.ASSISTANT:
        return message.guard_action in WITHHELD_ACTIONS
    return message.children.filter(guard_action__in=WITHHELD_ACTIONS).exists()


def conversation_tree(conversation: Conversation) -> Tree:
    # A salon figure's silence (静听) is kept for usage only: no branch holds it.
    rows = conversation.messages.exclude(guard_action=PASSED).values_list("pk", "parent_id")
    return Tree(Node(pk, parent) for pk, parent in rows)


def branch_messages(conversation: Conversation, tree: Tree | None = None) -> list[Message]:
    """The shown branch, root first: two queries whatever the conversation's size."""
    tree = tree or conversation_tree(conversation)
    path = tree.path_to(conversation.active_leaf_id)
    by_id = conversation.messages.in_bulk(path)
    return [by_id[pk] for pk in path]


def all_messages(conversation: Conversation) -> list[Message]:
    """Every message of the conversation, every branch, oldest first (a parent before its children)."""
    return list(conversation.messages.exclude(guard_action=PASSED).order_by("pk"))


def branch_window(conversation: Conversation, tree: Tree, *, before: int | None = None,
                  limit: int, reaching: int | None = None) -> tuple[list[Message], int | None, int]:
    """The last `limit` messages of the shown branch (above `before` when given), and the id and
    count of what is still earlier. Only the window is fetched, so a 2,000-message branch costs
    no more than a short one. `reaching` (a search result) widens the window back to that message."""
    path = tree.path_to(conversation.active_leaf_id)
    if before is not None and before not in path:
        return [], None, 0  # the branch changed since that button was drawn
    end = path.index(before) if before is not None else len(path)
    start = max(0, end - limit)
    if reaching in path[:start]:
        start = max(0, path.index(reaching) - 1)  # with the message before it, for context
    window = path[start:end]
    by_id = conversation.messages.select_related("image").in_bulk(window)  # a shown picture, in the same query
    return [by_id[pk] for pk in window], (window[0] if start else None), start


def conversations_with(user, persona) -> list[Conversation]:
    """The user's conversations with one figure, newest first (archived ones included)."""
    return list(Conversation.objects.for_user(user).filter(persona=persona).order_by("-updated_at", "-pk"))


def latest_conversation_with(user, persona) -> Conversation | None:
    return (
        Conversation.objects.for_user(user).filter(persona=persona, archived=False)
        .select_related("life_stage").prefetch_related(seats_prefetch()).order_by("-updated_at", "-pk").first()
    )


def recent_conversations(user, limit: int) -> list[Conversation]:
    """The user's conversations with every figure, newest first (archived ones included)."""
    return list(Conversation.objects.for_user(user).with_figures().order_by("-updated_at", "-pk")[:limit])


def tool_runs_by_message(messages: list[Message]) -> dict[int, list[ToolRun]]:
    """The tool cards of a branch in one query (the messages were fetched through their owner)."""
    runs: dict[int, list[ToolRun]] = {}
    for run in ToolRun.objects.filter(message__in=[m.pk for m in messages if m.role == Message.Role.ASSISTANT]):
        runs.setdefault(run.message_id, []).append(run)
    return runs
