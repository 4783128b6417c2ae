{#
  Synthetic starting census: var('census_size') employees as of Jan 1 of var('start_year').
  Generated in SQL from range(), so no seed files are needed and it scales to millions.
  Every attribute is a deterministic hash-based draw keyed on the seed and employee.
#}
with numbers as (

    select range + 1 as employee_number
    from range({{ var('census_size') }})

),

draws as (

    select
        employee_number,
        printf('EMP%07d', employee_number) as employee_id,
        {{ rand_uniform("'census_level'", 'employee_number') }}      as u_level,
        {{ rand_uniform("'census_department'", 'employee_number') }} as u_department,
        {{ rand_uniform("'census_age'", 'employee_number') }}        as u_age,
        {{ rand_uniform("'census_tenure'", 'employee_number') }}     as u_tenure,
        {{ rand_uniform("'census_salary'", 'employee_number') }}     as u_salary,
        {{ rand_uniform("'census_birthday'", 'employee_number') }}   as u_birthday
    from numbers

),

leveled as (

    select
        *,
        -- a pyramid: many juniors, few executives
        case
            when u_level < 0.40 then 1
            when u_level < 0.70 then 2
            when u_level < 0.88 then 3
            when u_level < 0.97 then 4
            else 5
        end as level
    from draws

),

aged as (

    select
        *,
        -- senior people are older on average; ages 22..63 on Jan 1 of the start year
        least(63, 22 + (level - 1) * 5 + floor(u_age * 20))::integer as age_at_start
    from leveled

)

select
    employee_id,
    -- birth date such that the employee is age_at_start on Jan 1 of the start year
    (make_date({{ var('start_year') }} - age_at_start - 1, 1, 2)
        + floor(u_birthday * 364)::integer)::date                         as birth_date,
    -- tenure of 0..(age - 21) years, at most 30; hire date strictly before the start year
    (make_date({{ var('start_year') }}, 1, 1)
        - (1 + floor(u_tenure * least(age_at_start - 21, 30) * 365))::integer)::date as hire_date,
    level,
    {{ department_for('floor(u_department * 6)::integer') }}             as department,
    {{ salary_for_level('level', 'u_salary') }}                               as salary
from aged
