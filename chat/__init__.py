"""Conversations: the message tree, the SQLite store, export and import.

Everything here is plain Python (stdlib sqlite3), usable from the GUI, the CLI and
tests alike::

    from chat.store import ChatStore
    store = ChatStore.open()                 # data_paths().chats_db; or open(path)
    # ChatStore.open(read_only=True) when another window holds it (StoreLockedError)

Conversations (``chat.records.Conversation``)
    create(title=None, system_prompt=None, model=None) -> id
    list(include_archived=False, trash=False)   pinned first, then newest update
    get(id), rename, set_pinned, set_archived, set_system_prompt, set_model
    delete(id) -> trash; list(trash=True); restore(id) -> False if not in the trash;
    purge(id) (for good); empty_trash() -> how many

Messages (``chat.records.Message``; a tree, the conversation stores its active leaf)
    add_user_message(conv, text, parent_id=None) -> id   committed at once
    begin_reply(conv, parent_id=None, model, params) -> id   state "streaming"
    reply_writer(id) -> ReplyWriter: append(piece) (saves >= once a second),
        tick(), finish(state="complete", stats=None, token_count=None)
    start_reply(...) = begin_reply + reply_writer
    edit_user_message(id, text) -> sibling id       (a branch)
    regenerate(reply_id) -> sibling reply id         (streaming; fill via reply_writer)
    continue_reply(id) -> ReplyWriter                (interrupted/cancelled/error reply, or one
                                                      that ended with stop_reason "length")
    active_path(conv) -> [root .. leaf]; siblings(id) -> (list, index)
    switch_to(id) -> new active path (through id, down to its newest leaf)
    get_message(id), messages(conv), children(id)

On a writable open, replies left "streaming" by a crash become "interrupted" (ids in
``store.recovered``), text kept. search(query) -> [SearchHit] (FTS5, snippets).
export_markdown(ids|None), export_json(ids|None), import_json(text|path) -> ImportResult
(new ids, how many were already here and skipped; all or nothing; ChatImportError says
where). Errors derive from ChatStoreError and read well as user messages.

Threads: one connection, every method serialized by the store's lock, so one store
may be shared by the GUI thread and a worker. Processes: one writer per database
(lock file); readers (read_only=True) never block it.
"""
