-- LLM usage tracking: providers, their models, and one row per agent call.
CREATE TABLE IF NOT EXISTS llm_providers (
  id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name         VARCHAR(255) UNIQUE NOT NULL,
  display_name TEXT,
  base_url     TEXT,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS llm_models (
  id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  provider_id          UUID REFERENCES llm_providers(id),
  name                 VARCHAR(255) NOT NULL,
  context_window       INTEGER,
  input_cost_per_mtok  NUMERIC(12, 6),
  output_cost_per_mtok NUMERIC(12, 6),
  created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (provider_id, name)
);

CREATE TABLE IF NOT EXISTS llm_usage (
  id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider_id       UUID REFERENCES public.llm_providers(id),
  model_id          UUID REFERENCES public.llm_models(id),
  provider_name     VARCHAR(255) NOT NULL,
  model_name        VARCHAR(255) NOT NULL,
  agent_name        TEXT,
  user_id           UUID,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  total_tokens      INTEGER GENERATED ALWAYS AS (prompt_tokens + completion_tokens) STORED,
  cost_usd          NUMERIC(12, 6),
  metadata          JSONB NOT NULL DEFAULT '{}'::jsonb,
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_llm_usage_created ON llm_usage (created_at);
CREATE INDEX IF NOT EXISTS idx_llm_usage_agent ON llm_usage (agent_name, created_at);

ALTER TABLE llm_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY "service role writes usage" ON llm_usage FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON llm_usage, llm_models, llm_providers TO service_role;
