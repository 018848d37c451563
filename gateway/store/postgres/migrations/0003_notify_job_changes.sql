-- Every change of a job (a new version) is announced with NOTIFY, so that
-- replicas follow each other's changes at once (Store.ListenJobs). The
-- channel is named for the schema, so that stores in other schemas of the
-- database hear nothing of these jobs; the payload is "<id>:<version>".
CREATE FUNCTION comfypod_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('comfypod_jobs_' || md5(TG_TABLE_SCHEMA), NEW.id || ':' || NEW.version);
	RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION comfypod_notify_job();
CREATE TRIGGER jobs_notify_update AFTER UPDATE ON jobs FOR EACH ROW
	WHEN (OLD.version IS DISTINCT FROM NEW.version) EXECUTE FUNCTION comfypod_notify_job();
