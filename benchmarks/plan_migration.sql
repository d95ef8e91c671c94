-- The plan's SQL (shared/plan/migration-plan.md, steps 2 to 5) as written, for benchmarks only.
-- Remove the problematic foreign key constraints
ALTER TABLE public.llm_usage DROP CONSTRAINT IF EXISTS llm_usage_provider_id_fkey;
ALTER TABLE public.llm_usage DROP CONSTRAINT IF EXISTS llm_usage_model_id_fkey;

-- Remove the unused UUID columns that are causing issues
ALTER TABLE public.llm_usage DROP COLUMN IF EXISTS provider_id;
ALTER TABLE public.llm_usage DROP COLUMN IF EXISTS model_id;

-- Add provider_name column if it doesn't exist
ALTER TABLE public.llm_models ADD COLUMN IF NOT EXISTS provider_name VARCHAR(255);

-- Update provider_name from existing provider_id relationships (if any data exists)
UPDATE public.llm_models 
SET provider_name = p.name 
FROM public.llm_providers p 
WHERE llm_models.provider_id = p.id 
AND llm_models.provider_name IS NULL;

-- Drop the old foreign key constraint
ALTER TABLE public.llm_models DROP CONSTRAINT IF EXISTS llm_models_provider_id_fkey;

-- Drop the provider_id column
ALTER TABLE public.llm_models DROP COLUMN IF EXISTS provider_id;

-- Make provider_name NOT NULL and add foreign key to provider name
ALTER TABLE public.llm_models ALTER COLUMN provider_name SET NOT NULL;
ALTER TABLE public.llm_models ADD CONSTRAINT llm_models_provider_name_fkey 
    FOREIGN KEY (provider_name) REFERENCES public.llm_providers(name) ON DELETE CASCADE;

-- Change primary key to name (if data allows)
-- Note: This requires model names to be unique across all providers
-- Alternative: Use composite key (provider_name, model_name)

-- Drop the UUID primary key and make name the primary key
ALTER TABLE public.llm_providers DROP CONSTRAINT llm_providers_pkey;
ALTER TABLE public.llm_providers DROP COLUMN id;
ALTER TABLE public.llm_providers ADD PRIMARY KEY (name);

