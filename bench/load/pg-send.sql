-- The "send" scenario's submission as PostgreSQL sees it, for pgbench: the statements Guichet
-- sends for one submission, with nothing else (no HTTP, no Guichet); pg-send-jobs.sql is its
-- job runner's part, sending the acknowledgement e-mails, run beside it by as many clients as
-- Guichet has runners. bench/run-load.sh runs it on a copy of the run's database after the scenarios,
-- at the same client counts: the rate PostgreSQL itself reaches with this work on this
-- machine, the ceiling of any code sending it.
--
--   pgbench -n -M prepared -f pg-send.sql -D tenant=… -D service=… -D commune=… -D citizen=…
--           -D lanes=16 …
--
-- tenant: the EPCI handling the "signalement" service, service: that service, commune: the
-- portal's commune, citizen: the demo citizen sending; lanes: the handling tenant's event
-- chain lanes (crates/guichet-store-postgres, MAX_LANES), which must exist.
--
-- Copied from a `log_statement = all` capture of that scenario (release build of 29a183f):
-- the citizen's draft looked up (a fresh form's has none), the service read, "already sent?"
-- and the reference number in one statement; then the transaction: the request, its first
-- dashboard period, the draft's removal, the acknowledgement document, its e-mail and the
-- e-mail's job as one statement ending on a chain lane (a free one, or wait on one at
-- random: Guichet's fallback spreads waits the same way), the two events and the lane's new
-- head. Values are those of the capture, ids new per transaction; the event
-- hashes are placeholders (the copy is thrown away). When Guichet's statements change, capture
-- them again the same way and update this file.
\set rid random(1, 9000000000000000000)
\set did random(1, 9000000000000000000)
\set lane random(0, :lanes - 1)
select id, citizen_id, service_id, portal_tenant_id, answers, page, updated_at from drafts where id = lpad(to_hex(:did::bigint), 32, '1')::uuid and citizen_id = :citizen;
select id, tenant_id, slug, template, title, category, summary, description, requirements, delay_text, regime, delay, prior_check, reference_prefix, form, workflow, enabled, created_at from services where id = :service;
with made as (select id, reference from requests where draft_id = lpad(to_hex(:did::bigint), 32, '1')::uuid and citizen_id is not distinct from :citizen::uuid),
  counted as (insert into reference_counters (tenant_id, year, last) select :tenant::uuid, extract(year from now())::int, 1 from (select set_config('synchronous_commit', 'off', true)) s where not exists (select 1 from made) on conflict (tenant_id, year) do update set last = reference_counters.last + 1 returning last)
select (select id from made) as id, (select reference from made) as reference, (select last from counted) as last;
begin;
with request as (insert into requests (id, tenant_id, commune_tenant_id, service_id, citizen_id, draft_id, reference, channel, status, answers, submitter, submitted_at, deemed_decision_on, created_at, updated_at, phase, search_text, ack_due_at, acknowledged_at, first_response_at, closed_at, waiting_us, waiting_since, reopened, processing_us)
    VALUES (lpad(to_hex(:rid::bigint), 32, '0')::uuid, :tenant, :commune, :service, :citizen, lpad(to_hex(:did::bigint), 32, '1')::uuid, 'SIG-' || :rid, 'web', 'received', '{"adresse": {"city": "Saint-Aubin-sur-Lys", "street": "3 rue de la Lys", "postcode": "45130"}, "categorie": "eclairage", "description": "Signalement de charge 0-1298 : lampadaire éteint depuis trois jours au carrefour, lampadaire éteint depuis trois jours au carrefour, lampadaire éteint depuis trois jours au carrefour,", "precision_lieu": "devant la boulangerie"}'::jsonb, '{"nom": "Martin", "prenom": "Camille", "adresse": {"voie": null, "commune": null, "code_postal": null}, "courriel": "camille.martin@exemple.test", "telephone": "+33612345678"}'::jsonb, now(), NULL::date, now(), now(), 'open', 'sig 2026 001300 camille martin camille martin exemple test saint aubin sur lys 45130 3 rue de la lys eclairage signalement de charge 0 1298 lampadaire eteint depuis trois jours au carrefour lampadaire eteint depuis trois jours au carrefour lampadaire eteint depuis trois jours au carrefour devant la boulangerie t' || replace(:tenant, '-', ''), '2026-12-15 23:00:00+00'::timestamptz, now(), NULL::timestamptz, NULL::timestamptz, '0'::bigint, NULL::timestamptz, '0', NULL::bigint) returning *),
  first_period as (insert into request_periods (request_id, seq, tenant_id, phase, started_at, service_id, channel, commune_id, submitted_at, deemed_decision_on) select r.id, 0, :tenant, 'open', now(), r.service_id, r.channel, coalesce(r.commune_tenant_id, r.tenant_id), r.submitted_at, r.deemed_decision_on from request r),
  draft_removed as (delete from drafts where id = lpad(to_hex(:did::bigint), 32, '1')::uuid and citizen_id = :citizen),
  new_documents as (insert into documents (id, request_id, kind, title, body_text, body_html, created_at, code)
    VALUES (gen_random_uuid(), lpad(to_hex(:rid::bigint), 32, '0')::uuid, 'are', 'Accusé de réception électronique – SIG-2026-001300', 'ACCUSÉ DE RÉCEPTION ÉLECTRONIQUE Référence : SIG-2026-001300  Bonjour Camille Martin,  Nous avons bien reçu votre demande « Signaler un problème sur l''espace public » le 1er décembre 2026 à 2 h 59.  Date de réception : 1er décembre 2026 à 2 h 59  Service chargé de votre demande : Communauté de communes du Val de Lys – accueil 2 place de l''Hôtel de Communauté, 45130 SAINT-AUBIN-SUR-LYS Courriel : accueil@cc-val-de-lys.test Téléphone : 02 38 00 10 00   Cette démarche ne donne pas lieu à une décision implicite d''acceptation ou de rejet : le service vous répondra directement.  Conservez ce message : il fait foi de la date de votre envoi.  --  Ce message est envoyé automatiquement. Pour toute question, contactez le service ci-dessus en rappelant la référence SIG-2026-001300.', '<article class="ack"> <h2>Accusé de réception électronique</h2> <p><strong>Référence : SIG-2026-001300</strong></p> <p>Bonjour Camille Martin,</p> <p>Nous avons bien reçu votre demande « Signaler un problème sur l&#39;espace public » le 1er décembre 2026 à 2 h 59.</p> <dl>   <dt>Date de réception</dt><dd>1er décembre 2026 à 2 h 59</dd>   <dt>Service chargé de votre demande</dt>   <dd>Communauté de communes du Val de Lys – accueil<br>2 place de l&#39;Hôtel de Communauté, 45130 SAINT-AUBIN-SUR-LYS<br>Courriel : accueil@cc-val-de-lys.test<br>Téléphone : 02 38 00 10 00</dd> </dl>  <p>Cette démarche ne donne pas lieu à une décision implicite d&#39;acceptation ou de rejet : le service vous répondra directement.</p>  <p>Conservez ce message : il fait foi de la date de votre envoi.</p> </article>', now(), NULL::text)),
  new_emails as (insert into outbox_emails (id, to_address, subject, body_text, body_html, message_id, request_id, created_at, reply_to, refs, automatic)
    VALUES (lpad(to_hex(:rid::bigint), 32, '2')::uuid, 'camille.martin@exemple.test', 'Accusé de réception électronique de votre demande SIG-2026-001300', 'ACCUSÉ DE RÉCEPTION ÉLECTRONIQUE Référence : SIG-2026-001300  Bonjour Camille Martin,  Nous avons bien reçu votre demande « Signaler un problème sur l''espace public » le 1er décembre 2026 à 2 h 59.  Date de réception : 1er décembre 2026 à 2 h 59  Service chargé de votre demande : Communauté de communes du Val de Lys – accueil 2 place de l''Hôtel de Communauté, 45130 SAINT-AUBIN-SUR-LYS Courriel : accueil@cc-val-de-lys.test Téléphone : 02 38 00 10 00   Cette démarche ne donne pas lieu à une décision implicite d''acceptation ou de rejet : le service vous répondra directement.  Conservez ce message : il fait foi de la date de votre envoi.  --  Ce message est envoyé automatiquement. Pour toute question, contactez le service ci-dessus en rappelant la référence SIG-2026-001300.', '<article class="ack"> <h2>Accusé de réception électronique</h2> <p><strong>Référence : SIG-2026-001300</strong></p> <p>Bonjour Camille Martin,</p> <p>Nous avons bien reçu votre demande « Signaler un problème sur l&#39;espace public » le 1er décembre 2026 à 2 h 59.</p> <dl>   <dt>Date de réception</dt><dd>1er décembre 2026 à 2 h 59</dd>   <dt>Service chargé de votre demande</dt>   <dd>Communauté de communes du Val de Lys – accueil<br>2 place de l&#39;Hôtel de Communauté, 45130 SAINT-AUBIN-SUR-LYS<br>Courriel : accueil@cc-val-de-lys.test<br>Téléphone : 02 38 00 10 00</dd> </dl>  <p>Cette démarche ne donne pas lieu à une décision implicite d&#39;acceptation ou de rejet : le service vous répondra directement.</p>  <p>Conservez ce message : il fait foi de la date de votre envoi.</p> </article>', lpad(to_hex(:rid::bigint), 32, '2') || '@guichet.localhost', lpad(to_hex(:rid::bigint), 32, '0')::uuid, now(), NULL::text, '', 't'::boolean)),
  new_jobs as (insert into jobs (id, kind, payload, dedup_key, max_attempts, run_at, created_at)
    VALUES (gen_random_uuid(), 'email.send', json_build_object('email_id', lpad(to_hex(:rid::bigint), 32, '2')::uuid)::jsonb, 'email.send:' || lpad(to_hex(:rid::bigint), 32, '2')::uuid, '8'::int, now(), now()) on conflict do nothing),
  free as (select lane, seq, hash from event_heads where tenant_id = :tenant order by lane limit 1 for update skip locked),
  fallback as (select lane, seq, hash from event_heads where tenant_id = :tenant and lane = :lane and not exists (select 1 from free) for update)
select * from free union all select * from fallback \gset
\set s1 :seq + 1
\set s2 :seq + 2
with new_events as (insert into events (id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, channel, kind, citizen_visible, data, prev_hash, hash)
    VALUES (gen_random_uuid(), :tenant, :lane, :s1, lpad(to_hex(:rid::bigint), 32, '0')::uuid, now(), 'citizen', :citizen, 'web', 'submitted', true, '{"reference":"SIG","service":"Signaler un problème sur l''espace public"}', :hash, md5(:hash)), (gen_random_uuid(), :tenant, :lane, :s2, lpad(to_hex(:rid::bigint), 32, '0')::uuid, now(), 'system', NULL, 'web', 'acknowledged', true, '{"document":"x","email":"y","kind":"are"}', md5(:hash), md5(md5(:hash)))),
  head0 as (update event_heads set seq = :s2, hash = md5(md5(:hash)) where tenant_id = :tenant and lane = :lane)
select 1;
commit;
