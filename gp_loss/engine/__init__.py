"""The search engine: aging evolution, its selection policies, Pareto ranking, the persistent search cache, screened DEAP operators, progress."""
