"""The sync engine: everything a sync does between "here are users" and "here is the report".

The operators (``airflow_provider_userattrs.operators``) hold only what is Airflow's: parameters,
templating, the connection check, building an engine, pushing the report and the task's verdict. This
package holds the rest, one concern per module:

- :mod:`.sources`: where users come from (records, SQL streamed, failure files to replay).
- :mod:`.storage`: failure files, the replay ledger, the failure root.
- :mod:`.checkpoint`: the typed, versioned :class:`~.checkpoint.SyncState` and where it is kept; it answers
  "what does a retried try resend?".
- :mod:`.engine`: the chunk loop; it answers "where is a user counted?".
- :mod:`.incremental`: one :class:`~.incremental.IncrementalState` interface, kept in the warehouse or in
  object storage.
- :mod:`.report`: the report, built by one function from what a try settled.
"""
